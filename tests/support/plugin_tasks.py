"""Extra task types for the tests, registered through ``TASKER_TASK_MODULES`` exactly as a
user's own task module would be."""

from __future__ import annotations

import time
from typing import Any

from core import catalogue
from core.errors import ValidationError


def _validate_sleep(params: Any) -> dict[str, Any]:
    obj = catalogue.require_object("sleep", params, ("seconds", "tag"))
    seconds = catalogue.number("sleep", "seconds", obj["seconds"])
    if not 0 <= seconds <= 120:
        raise ValidationError("param 'seconds' of sleep must be between 0 and 120")
    return {"seconds": seconds, "tag": str(obj["tag"])}


def run_sleep(params: dict[str, Any]) -> Any:
    time.sleep(params["seconds"])
    return {"slept": params["seconds"], "tag": params["tag"]}


def _validate_boom(params: Any) -> dict[str, Any]:
    obj = catalogue.require_object("boom", params, ("fail", "tag"))
    if not isinstance(obj["fail"], bool):
        raise ValidationError("param 'fail' of boom must be true or false")
    return {"fail": obj["fail"], "tag": str(obj["tag"])}


def run_boom(params: dict[str, Any]) -> Any:
    if params["fail"]:
        raise RuntimeError("the boom handler exploded on purpose")
    return "ok"


catalogue.register(catalogue.TaskType("sleep", _validate_sleep, "tests.support.plugin_tasks:run_sleep", False,
                                      "sleeps, for fault tests"))
catalogue.register(catalogue.TaskType("boom", _validate_boom, "tests.support.plugin_tasks:run_boom", False,
                                      "raises when asked, for error-status tests"))
