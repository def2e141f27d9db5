"""The tasker's event loop thread: where async handlers (HTTP calls) run, many at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any


class AsyncRunner:
    def __init__(self, concurrency: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._limit = concurrency
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="event-loop", daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._sem = asyncio.Semaphore(self._limit)
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, make: Callable[[], Coroutine[Any, Any, Any]], done: Callable[[Any], None]) -> None:
        """Run ``make()`` on the loop (at most ``concurrency`` at once); pass its value to ``done``."""
        asyncio.run_coroutine_threadsafe(self._guarded(make, done), self.loop)

    def start_here(self, make: Callable[[], Coroutine[Any, Any, Any]], done: Callable[[Any], None]) -> None:
        """Like :meth:`submit`, called from the loop's own thread (no hop: used for timed starts)."""
        self._tasks.add(task := self.loop.create_task(self._guarded(make, done)))
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, make: Callable[[], Coroutine[Any, Any, Any]], done: Callable[[Any], None]) -> None:
        assert self._sem is not None
        async with self._sem:
            value = await make()
        done(value)

    def close(self, timeout: float = 5.0) -> None:
        async def shutdown() -> None:
            from tasker.tasks import http

            await http.close_session()

        if self.loop.is_running():
            future = asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
