"""The pure decisions of a workflow (core/workflow.py), table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.workflow import (
    Finish,
    Launch,
    State,
    Wait,
    condition_passed,
    on_due,
    on_finished,
    previous_body,
)


def state(**overrides: Any) -> State:
    base = dict(phase="step", position=0, checks=0, steps=2, has_check=True, has_fallback=True,
                check_retries=2, check_delay_s=5.0, check_interval_s=1.0)
    return State(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("st", "expected"),
    [
        (state(), Launch("step", 0)),
        (state(phase="check", checks=2), Launch("check", 0, 2)),
        (state(phase="fallback", position=1), Launch("fallback", 1)),
    ],
)
def test_a_due_workflow_starts_what_its_phase_says(st: State, expected: Launch) -> None:
    assert on_due(st) == expected


@pytest.mark.parametrize(
    ("st", "kind", "ok", "expected"),
    [
        # a step succeeded: wait check_delay before the first check
        (state(), "step", True, Wait("check", 0, 0, 5.0)),
        # no condition check: the next step at once, or success after the last
        (state(has_check=False), "step", True, Launch("step", 1)),
        (state(has_check=False, position=1), "step", True, Finish("success", "all 2 steps succeeded")),
        # a step failed: the fallback, or failed without one
        (state(), "step", False, Launch("fallback", 0, reason="step 1 failed: HTTP 500")),
        (state(has_fallback=False, position=1), "step", False, Finish("failed", "step 2 failed: HTTP 500")),
        # the check passed: next step or success
        (state(phase="check"), "check", True, Launch("step", 1)),
        (state(phase="check", position=1), "check", True, Finish("success", "all 2 steps succeeded")),
        # the check did not pass: wait an interval, counting the checks done
        (state(phase="check", checks=0), "check", False, Wait("check", 0, 1, 1.0)),
        (state(phase="check", checks=1), "check", False, Wait("check", 0, 2, 1.0)),
        # 1 + check_retries checks failed: the fallback
        (state(phase="check", checks=2), "check", False,
         Launch("fallback", 0, reason="the condition check after step 1 did not pass after 3 checks (last: HTTP 500)")),
        (state(phase="check", checks=0, check_retries=0, has_fallback=False), "check", False,
         Finish("failed", "the condition check after step 1 did not pass after 1 checks (last: HTTP 500)")),
    ],
)
def test_what_follows_a_finished_task(st: State, kind: str, ok: bool, expected: Any) -> None:
    assert on_finished(st, kind, ok, "HTTP 500") == expected


def _http(body: Any, code: int = 200) -> dict[str, Any]:
    return {"status_code": code, "body": body if isinstance(body, str) else json.dumps(body), "headers": {}}


@pytest.mark.parametrize(
    ("check", "status", "result", "expected"),
    [
        ({}, "completed", _http("anything"), (True, None)),
        ({}, "failed", _http("x", 503), (False, "HTTP 503")),
        ({}, "failed", None, (False, "the check call failed")),
        ({"json_field": "state", "equals": "ready"}, "completed", _http({"state": "ready"}), (True, None)),
        ({"json_field": "state", "equals": "ready"}, "completed", _http({"state": "pending"}),
         (False, "'state' is \"pending\"")),
        ({"json_field": "a.b.1", "equals": 3}, "completed", _http({"a": {"b": [1, 3]}}), (True, None)),
        ({"json_field": "a.b.5", "equals": 3}, "completed", _http({"a": {"b": [1, 3]}}), (False, "'a.b.5' is absent")),
        ({"json_field": "ok", "equals": True}, "completed", _http({"ok": 1}), (False, "'ok' is 1")),
        ({"json_field": "ok", "equals": None}, "completed", _http({"ok": None}), (True, None)),
        ({"json_field": "state", "equals": "ready"}, "completed", _http("<html>"), (False, "the answer is not JSON")),
    ],
)
def test_condition_passes_on_success_and_the_json_field(check: dict[str, Any], status: str, result: Any,
                                                        expected: tuple[bool, str | None]) -> None:
    assert condition_passed(check, status, result) == expected


@pytest.mark.parametrize(
    ("result", "body"),
    [
        (_http({"id": 7}), {"id": 7}),
        (_http("plain text"), "plain text"),
        (_http(""), ""),
        (5, 5),
        ({"not": "http"}, {"not": "http"}),
    ],
)
def test_body_from_previous_sends_the_parsed_answer(result: Any, body: Any) -> None:
    assert previous_body(result) == body
