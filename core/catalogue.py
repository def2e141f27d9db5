"""The task catalogue: which task types exist, how their params are validated, and which
handler runs them.

The API validates with the same specs the tasker trusts. A handler is named by a
``"module:function"`` path so the API never imports worker code; extra task types are
registered by the modules listed in ``TASKER_TASK_MODULES`` (they call :func:`register`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

from core import song
from core.errors import ConfigError, ValidationError

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TaskType:
    name: str
    #: returns the normalised params or raises ValidationError naming what to fix
    validate: Callable[[Any], Params]
    #: ``"module:function"``; the function takes the params and returns a JSON value
    handler: str
    #: same params, same result: successful results go to the cache table
    deterministic: bool
    description: str = ""
    #: the JSON Schema of the params (published in the OpenAPI document and checked before
    #: ``validate``); None: any JSON object, and ``validate`` says the rest
    schema: Callable[[], dict[str, Any]] | None = None

    def params_schema(self) -> dict[str, Any]:
        if self.schema is None:
            return {"type": "object", "description": f"params of {self.name}"}
        return self.schema()


_REGISTRY: dict[str, TaskType] = {}


def register(task_type: TaskType) -> TaskType:
    _REGISTRY[task_type.name] = task_type
    return task_type


def get(name: str) -> TaskType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError(
            f"unknown task {name!r}; known tasks: {', '.join(names())}"
        ) from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def all_types() -> list[TaskType]:
    return [_REGISTRY[n] for n in names()]


def load_task_modules(modules: Iterable[str]) -> None:
    """Import the modules that register extra task types (``TASKER_TASK_MODULES``)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"TASKER_TASK_MODULES: cannot import {module!r}: {exc}") from exc


def resolve_handler(path: str) -> Callable[[Params], Any]:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    func = getattr(module, attr)
    if not callable(func):
        raise ConfigError(f"handler {path!r} is not callable")
    return func  # type: ignore[no-any-return]


def params_key(params: Params) -> str:
    """Canonical JSON of the params: the cache key of a deterministic task."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


# --- validation helpers -------------------------------------------------------------------

def require_object(task: str, params: Any, fields: tuple[str, ...]) -> Params:
    if not isinstance(params, dict):
        raise ValidationError(
            f"params of {task} must be a JSON object with {', '.join(fields)}"
        )
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValidationError(
            f"unknown param {unknown[0]!r} for {task}; expected {', '.join(fields)}"
        )
    missing = [f for f in fields if f not in params]
    if missing:
        raise ValidationError(f"missing param {missing[0]!r} for {task}; expected {', '.join(fields)}")
    return params


def number(task: str, name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"param {name!r} of {task} must be a number, got {json.dumps(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"param {name!r} of {task} must be a finite number")
    return value


def _numbers(task: str, fields: tuple[str, ...]) -> Callable[[Any], Params]:
    def validate(params: Any) -> Params:
        obj = require_object(task, params, fields)
        return {f: number(task, f, obj[f]) for f in fields}

    return validate


def _validate_surprise(params: Any) -> Params:
    obj = require_object("surprise", params, ("first",))
    value = obj["first"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"param 'first' of surprise must be an integer, got {json.dumps(value)}")
    if not 1 <= value <= len(song.LINES):
        raise ValidationError(
            f"param 'first' of surprise must be between 1 and {len(song.LINES)} (a line of the song)"
        )
    return {"first": value}


def _number_schema(fields: tuple[str, ...]) -> Callable[[], dict[str, Any]]:
    return lambda: {"type": "object", "properties": {f: {"type": "number"} for f in fields},
                    "required": list(fields), "additionalProperties": False}


def _surprise_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"first": {"type": "integer", "minimum": 1, "maximum": len(song.LINES),
                                                       "description": "a line of the song"}},
            "required": ["first"], "additionalProperties": False}


register(TaskType("sum2", _numbers("sum2", ("first", "second")), "tasker.tasks.sum2:run", True,
                  "first + second", _number_schema(("first", "second"))))
register(TaskType("mult3", _numbers("mult3", ("first", "second", "third")), "tasker.tasks.mult3:run",
                  True, "first * second * third", _number_schema(("first", "second", "third"))))
register(TaskType("surprise", _validate_surprise, "tasker.tasks.surprise:run", True,
                  "line number `first` of a public-domain song; guess which", _surprise_schema))


# The HTTP task type lives in its own module (it is the biggest spec); importing it registers it.
from core import httpspec as _httpspec  # noqa: E402,F401
