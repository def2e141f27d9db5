"""The API's own dispatcher thread: sends the runs this process just accepted.

Requests never wait for SQS: a request is acknowledged once PostgreSQL committed it, and this
thread sends it moments later. Sends are paced (at most one per ``linger`` per type) so that
under load many runs share one message; at low load a run is sent at once. Whatever it could
not send (SQS down, window full) stays pending for the controller.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict

from core.dispatch import Dispatcher
from core.errors import QueueUnavailable, StoreUnavailable

log = logging.getLogger("tasker.api.dispatch")


class BackgroundDispatcher:
    def __init__(self, dispatcher: Dispatcher, linger_s: float) -> None:
        self.dispatcher = dispatcher
        self.linger_s = linger_s
        self._pending: dict[str, list[str]] = defaultdict(list)
        self._kicks: set[str] = set()
        self._cond = threading.Condition()
        self._last_send: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = False

    def queue_down(self, task_type: str) -> bool:
        return task_type in self.dispatcher.queue_down

    def submit(self, task_type: str, run_id: str) -> None:
        self._ensure_thread()
        with self._cond:
            self._pending[task_type].append(run_id)
            self._cond.notify()

    def kick(self, task_type: str) -> None:
        """Dispatch whatever of ``task_type`` is due (after a resume)."""
        self._ensure_thread()
        with self._cond:
            self._kicks.add(task_type)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def _ensure_thread(self) -> None:
        # gunicorn forks workers: each process needs its own thread
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._cond:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="api-dispatcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._kicks and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
            # pace: let runs accumulate if this type was sent very recently
            now = time.monotonic()
            with self._cond:
                types = set(self._pending) | self._kicks
            wait = min(
                (self._last_send.get(t, 0.0) + self.linger_s - now for t in types),
                default=0.0,
            )
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                batch, self._pending = self._pending, defaultdict(list)
                kicks, self._kicks = self._kicks, set()
            for task_type, run_ids in batch.items():
                self._send(task_type, run_ids)
            for task_type in kicks:
                self._send(task_type, None)

    def _send(self, task_type: str, run_ids: list[str] | None) -> None:
        self._last_send[task_type] = time.monotonic()
        try:
            self.dispatcher.dispatch(task_type, run_ids=run_ids)
        except QueueUnavailable as exc:
            log.warning("SQS unreachable; the controller will send later: %s", exc,
                        extra={"action": "defer", "task_type": task_type, "count": len(run_ids or [])})
        except StoreUnavailable as exc:
            log.warning("database unavailable while dispatching: %s", exc,
                        extra={"action": "defer", "task_type": task_type})
        except Exception:
            log.exception("dispatch failed", extra={"action": "defer", "task_type": task_type})
