"""The controller's part of workflows: look at every workflow whose wait is over or whose
current task ended, decide (``core/workflow.py``) and apply the decision in one transaction.

Any number of controllers may run: each workflow is moved under ``FOR UPDATE SKIP LOCKED`` of
its row and only if it still needs the move, and the task a move starts is created in that
same transaction with a ``workflow_items`` row whose unique key forbids a second one. A
controller that stops mid-way loses nothing: the next one finds the workflow in the same state.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.engine import Connection, Engine

from core import workflow as wf
from core.clock import utcnow
from core.dispatch import Dispatcher
from core.errors import QueueUnavailable
from core.ids import new_id
from core.logs import log_event
from core.statuses import WorkflowPhase, WorkflowStatus
from db.engine import transaction
from db.store import tasks as task_store
from db.store import workflows as store

log = logging.getLogger("tasker.workflows")
PHASE_OF = {"step": WorkflowPhase.STEP, "check": WorkflowPhase.CHECK, "fallback": WorkflowPhase.FALLBACK}


def advance(engine: Engine, dispatcher: Dispatcher, limit: int = 200) -> int:
    """Move every workflow that is due; the number moved."""
    with transaction(engine) as conn:
        ids = store.due_ids(conn, limit)
    moved = 0
    for workflow_id in ids:
        with transaction(engine) as conn:
            row = store.lock_due(conn, workflow_id)
            if row is None:
                continue  # another controller moved it
            launched = _move(conn, row, utcnow())
        moved += 1
        if launched is not None and launched[2] == "queued":
            try:
                dispatcher.dispatch(launched[0], run_ids=[launched[1]])
            except QueueUnavailable as exc:  # the run waits in PostgreSQL; dispatch_due sends it later
                log_event(log, logging.WARNING, f"SQS unreachable; the workflow's task waits: {exc}",
                          action="dispatch", workflow_id=workflow_id)
    return moved


def _state(row: dict[str, Any]) -> wf.State:
    spec = row["spec"]
    return wf.State(
        phase=row["phase"], position=row["position"], checks=row["checks"], steps=len(spec["steps"]),
        has_check=spec.get("check") is not None, has_fallback=spec.get("fallback") is not None,
        check_retries=spec["check_retries"], check_delay_s=spec["check_delay_s"],
        check_interval_s=spec["check_interval_s"],
    )


def _move(conn: Connection, row: dict[str, Any], now: dt.datetime) -> tuple[str, str, str] | None:
    """Apply one decision; the (task type, run id, status) of a task it started."""
    state = _state(row)
    wid = row["id"]
    last_result = row["last_result"]
    message: str | None = None
    if row["current_task_id"] is None:
        decision = wf.on_due(state)
    else:
        kind = row["item_kind"]
        task_id = row["current_task_id"]
        if kind == "check":
            passed, why = wf.condition_passed(row["spec"]["check"], row["task_status"], row["task_result"])
            store.record_outcome(conn, wid, task_id, "passed" if passed else "not_passed")
            decision = wf.on_finished(state, "check", passed, why)
            _log(wid, f"condition check {state.checks + 1} after step {state.position + 1} "
                      f"{'passed' if passed else 'did not pass'}{f': {why}' if why else ''}", "check", task_id)
        else:
            ok = row["task_status"] == "completed"
            store.record_outcome(conn, wid, task_id, "succeeded" if ok else "failed")
            if kind == "step" and ok:
                last_result = row["task_result"]
            decision = wf.on_finished(state, kind, ok, row["task_error"] or row["task_status"])
            if kind == "fallback":
                decision = wf.Finish(WorkflowStatus.FAILED,
                                     f"{row['message'] or 'failed'}; the fallback {'succeeded' if ok else 'failed'}")
            what = f"step {state.position + 1}" if kind == "step" else kind
            _log(wid, f"{what} {'succeeded' if ok else 'failed'}", kind, task_id)
    if isinstance(decision, wf.Finish):
        store.finish(conn, wid, decision.status, decision.message, last_result)
        _log(wid, f"workflow {decision.status}: {decision.message}", "finished")
        return None
    if isinstance(decision, wf.Wait):
        until = now + dt.timedelta(seconds=decision.delay_s)
        store.wait(conn, wid, phase=decision.phase, position=decision.position, checks=decision.checks,
                   until=until, last_result=last_result)
        return None
    if decision.kind == "fallback":
        message = decision.reason
    return _launch(conn, row, decision, last_result, message, now)


def _launch(conn: Connection, row: dict[str, Any], launch: wf.Launch, last_result: Any, message: str | None,
            now: dt.datetime) -> tuple[str, str, str]:
    spec = row["spec"]
    if launch.kind == "step":
        work = spec["steps"][launch.position]
    elif launch.kind == "check":
        work = spec["check"]
    else:
        work = spec["fallback"]
    params = dict(work["params"])
    if work.get("body_from") == "previous":
        params["body"] = wf.previous_body(last_result)
    task_id, run_id = new_id(), new_id()
    status = task_store.create_task(
        conn, task_id=task_id, run_id=run_id, client_id=row["client_id"], task_type=work["task_type"],
        params=params, retry_policy=work.get("retry_policy"), schedule=None, first_due=now, now=now,
    )
    store.started(conn, row["id"], kind=launch.kind, position=launch.position, attempt=launch.attempt,
                  task_id=task_id, phase=PHASE_OF[launch.kind], message=message, last_result=last_result)
    what = {"step": f"step {launch.position + 1}", "check": f"condition check {launch.attempt + 1} after step "
            f"{launch.position + 1}", "fallback": "fallback"}[launch.kind]
    _log(row["id"], f"{what} started", "start", task_id)
    return work["task_type"], run_id, status


def _log(workflow_id: str, message: str, action: str, task_id: str | None = None) -> None:
    log_event(log, logging.INFO, message, action=f"workflow_{action}", workflow_id=workflow_id, task_id=task_id)
