"""Running one claimed run: call its handler, turn what happened into an outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from core import catalogue
from core.clock import utcnow
from core.errors import ValidationError
from db.store.runs import ClaimedRun

log = logging.getLogger("tasker.execute")


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


class Handlers:
    """Task type -> handler function, resolved once per process."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._lock = threading.Lock()

    def get(self, task_type: str) -> Callable[[dict[str, Any]], Any]:
        handler = self._cache.get(task_type)
        if handler is None:
            with self._lock:
                handler = catalogue.resolve_handler(catalogue.get(task_type).handler)
                self._cache[task_type] = handler
        return handler


def execute(handlers: Handlers, run: ClaimedRun) -> Executed:
    started = utcnow()
    try:
        handler = handlers.get(run.task_type)
        result = handler(run.params)
        json.dumps(result)  # a result must be storable
        return Executed(run, True, result, None, False, False, started, utcnow())
    except ValidationError as exc:
        # bad input that got past the API (e.g. a task type whose rules changed): final
        return Executed(run, False, None, f"invalid params: {exc}", False, False, started, utcnow())
    except Exception as exc:  # a handler bug or a broken dependency: retry, flag the type
        log.warning(
            "handler raised %s: %s", type(exc).__name__, exc,
            extra={"action": "handler_error", "task_type": run.task_type, "task_id": run.task_id,
                   "run_id": run.run_id, "attempt": run.attempt},
            exc_info=True,
        )
        error = f"internal error: {type(exc).__name__}: {exc}"
        return Executed(run, False, None, error, True, True, started, utcnow())
