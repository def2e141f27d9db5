"""Running one claimed run: call its handler, turn what happened into an outcome.

A handler is ``run(params)`` or ``run(params, ctx)``, plain or ``async``. It returns a JSON
result, or a :class:`Report` when it knows more about the attempt (an HTTP status, a response
excerpt, whether a failure is worth retrying and when). Async handlers run on the tasker's
event loop, so one process keeps hundreds of them in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from core import catalogue, redact
from core.clock import utcnow
from core.errors import ValidationError
from db.store.runs import ClaimedRun

log = logging.getLogger("tasker.execute")


@dataclasses.dataclass(frozen=True)
class RunContext:
    task_id: str
    run_id: str
    attempt: int
    #: the client's secret for signing outbound calls (core.signing)
    signing_secret: str | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    """What a handler says about its attempt, beyond a plain result."""

    succeeded: bool
    result: Any = None
    error: str | None = None
    retryable: bool = True
    retry_after_s: float | None = None
    http_status: int | None = None
    response_excerpt: str | None = None


@dataclasses.dataclass(frozen=True)
class Executed:
    run: ClaimedRun
    succeeded: bool
    result: Any
    error: str | None
    #: the handler itself broke (not the client's input): the type's status becomes 'error'
    internal: bool
    retryable: bool
    started_at: dt.datetime
    finished_at: dt.datetime
    retry_after_s: float | None = None
    http_status: int | None = None
    response_excerpt: str | None = None


@dataclasses.dataclass(frozen=True)
class Handler:
    func: Callable[..., Any]
    is_async: bool
    wants_context: bool


class Handlers:
    """Task type -> handler, resolved once per process."""

    def __init__(self) -> None:
        self._cache: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def get(self, task_type: str) -> Handler:
        handler = self._cache.get(task_type)
        if handler is None:
            with self._lock:
                func = catalogue.resolve_handler(catalogue.get(task_type).handler)
                wants = len(inspect.signature(func).parameters) >= 2
                handler = Handler(func, inspect.iscoroutinefunction(func), wants)
                self._cache[task_type] = handler
        return handler


def _args(handler: Handler, run: ClaimedRun) -> tuple[Any, ...]:
    if handler.wants_context:
        return (run.params, RunContext(run.task_id, run.run_id, run.attempt, run.signing_secret))
    return (run.params,)


def _finish(run: ClaimedRun, value: Any, started: dt.datetime) -> Executed:
    finished = utcnow()
    if isinstance(value, Report):
        return Executed(
            run, value.succeeded, value.result, value.error, False, value.retryable, started, finished,
            value.retry_after_s, value.http_status, value.response_excerpt,
        )
    json.dumps(value)  # a result must be storable
    return Executed(run, True, value, None, False, False, started, finished)


def _failed(run: ClaimedRun, exc: Exception, started: dt.datetime) -> Executed:
    # an exception's text may quote the task's params: keep their credentials out of it
    secrets = redact.task_secrets(run.params, run.signing_secret)
    if isinstance(exc, ValidationError):
        # bad input that got past the API (e.g. a task type whose rules changed): final
        return Executed(run, False, None, redact.scrub(f"invalid params: {exc}", secrets), False, False,
                        started, utcnow())
    what = redact.scrub(f"{type(exc).__name__}: {exc}", secrets)
    log.warning(
        "handler raised %s", what,
        extra={"action": "handler_error", "task_type": run.task_type, "task_id": run.task_id,
               "run_id": run.run_id, "attempt": run.attempt},
        exc_info=True,
    )
    return Executed(run, False, None, f"internal error: {what}", True, True, started, utcnow())


def execute(handlers: Handlers, run: ClaimedRun) -> Executed:
    started = utcnow()
    try:
        handler = handlers.get(run.task_type)
        return _finish(run, handler.func(*_args(handler, run)), started)
    except Exception as exc:  # a handler bug or a broken dependency: retry, flag the type
        return _failed(run, exc, started)


async def execute_async(handlers: Handlers, run: ClaimedRun) -> Executed:
    started = utcnow()
    try:
        handler = handlers.get(run.task_type)
        return _finish(run, await handler.func(*_args(handler, run)), started)
    except Exception as exc:
        return _failed(run, exc, started)
