"""Workflows as pure decisions: given where a workflow is and how its last task ended, what
happens next. The controller applies the decision in one transaction (``controller/workflows.py``).

A workflow runs its steps in order. After each step the condition check runs after
``check_delay_s``, then every ``check_interval_s`` until it passes (the next step starts, or
the workflow ends ``success`` after the last one) or ``1 + check_retries`` checks have failed
(the fallback runs and the workflow ends ``failed``). A step that fails after its own retries
also runs the fallback and ends the workflow ``failed``. Without a condition check, each step
starts when the previous one succeeded.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from core.statuses import WorkflowPhase, WorkflowStatus


@dataclasses.dataclass(frozen=True)
class State:
    phase: str
    position: int
    checks: int
    steps: int
    has_check: bool
    has_fallback: bool
    check_retries: int
    check_delay_s: float
    check_interval_s: float


@dataclasses.dataclass(frozen=True)
class Launch:
    """Start a task now: a step, a check or the fallback."""

    kind: str  # 'step' | 'check' | 'fallback'
    position: int
    attempt: int = 0
    #: why the fallback runs
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Wait:
    """Nothing runs until ``delay_s`` from now; then the workflow is looked at again."""

    phase: str
    position: int
    checks: int
    delay_s: float


@dataclasses.dataclass(frozen=True)
class Finish:
    status: str
    message: str


Decision = Launch | Wait | Finish


def on_due(state: State) -> Decision:
    """The workflow's time has come and nothing runs: start what its phase says."""
    if state.phase == WorkflowPhase.CHECK:
        return Launch("check", state.position, state.checks)
    if state.phase == WorkflowPhase.FALLBACK:
        return Launch("fallback", state.position)
    return Launch("step", state.position)


def _fail(state: State, why: str) -> Decision:
    if state.has_fallback:
        return Launch("fallback", state.position, reason=why)
    return Finish(WorkflowStatus.FAILED, why)


def _next_step(state: State) -> Decision:
    if state.position + 1 >= state.steps:
        return Finish(WorkflowStatus.SUCCESS, f"all {state.steps} steps succeeded")
    return Launch("step", state.position + 1)


def on_finished(state: State, kind: str, succeeded: bool, error: str | None = None) -> Decision:
    """The running task (of ``kind``) ended; ``succeeded`` is the step's success or whether
    the condition passed."""
    if kind == "fallback":
        return Finish(WorkflowStatus.FAILED, "")  # the caller says why (the failure before it)
    if kind == "step":
        if not succeeded:
            return _fail(state, f"step {state.position + 1} failed: {error or 'no detail'}")
        if state.has_check:
            return Wait(WorkflowPhase.CHECK, state.position, 0, state.check_delay_s)
        return _next_step(state)
    # a condition check
    if succeeded:
        return _next_step(state)
    done = state.checks + 1
    if done >= 1 + state.check_retries:
        return _fail(state, f"the condition check after step {state.position + 1} did not pass "
                            f"after {done} checks{f' (last: {error})' if error else ''}")
    return Wait(WorkflowPhase.CHECK, state.position, done, state.check_interval_s)


# --- the condition ----------------------------------------------------------------------------

_MISSING = object()


def field_value(document: Any, path: str) -> Any:
    """``a.b.0.c`` in a JSON document (digits index lists); a sentinel when absent."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``true`` is not ``1`` (Python says it is); ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) or isinstance(b, int | float):
        return isinstance(a, int | float) and isinstance(b, int | float) and a == b
    return type(a) is type(b) and a == b


def condition_passed(check: dict[str, Any], task_status: str, result: Any) -> tuple[bool, str | None]:
    """Whether a finished check task means the condition holds, and why not."""
    if task_status != "completed":
        code = result.get("status_code") if isinstance(result, dict) else None
        return False, f"HTTP {code}" if code else "the check call failed"
    field = check.get("json_field")
    if not field:
        return True, None
    body = result.get("body") if isinstance(result, dict) else None
    try:
        document = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return False, "the answer is not JSON"
    value = field_value(document, field)
    if value is _MISSING:
        return False, f"'{field}' is absent"
    if not json_equal(value, check.get("equals")):
        return False, f"'{field}' is {json.dumps(value)[:100]}"
    return True, None


def previous_body(result: Any) -> Any:
    """What ``body_from: previous`` sends: an HTTP step's answer (parsed when it is JSON),
    or a built-in step's result."""
    if isinstance(result, dict) and "status_code" in result and "body" in result:
        body = result["body"]
        try:
            return json.loads(body) if isinstance(body, str) and body.strip() else body
        except ValueError:
            return body
    return result
