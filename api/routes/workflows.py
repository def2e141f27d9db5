"""The ``/workflows`` resource: a sequence of tasks with a condition check between steps and a
fallback (the seeds' Lambda orchestrator). The controller runs them (``controller/workflows.py``);
here they are validated, stored, shown and cancelled."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify

from api.auth import acting_client, principal
from api.body import client_name, retry_policy
from api.limits import check_quota
from api.openapi import doc
from api.routes.tasks import listing, task_and_params
from api.services import services
from core import httpspec, redact
from core import schedule as schedules
from core.clock import iso, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationError
from core.ids import new_id
from core.retry import RetryPolicy
from db.engine import transaction
from db.store import workflows as store

bp = Blueprint("workflows", __name__)
log = logging.getLogger("tasker.api")

DEFAULT_CHECK_RETRIES = 3
DEFAULT_CHECK_INTERVAL_S = 10.0
CHECK_FIELDS = ("json_field", "equals")


def _seconds(name: str, value: Any, default: float) -> float:
    return default if value is None else schedules.parse_delay(value, name)


def _work(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A step or the fallback, normalised: task type, params, retry policy, body_from."""
    checker = current_app.extensions["tasker_schemas"]["WorkflowStep"]
    try:
        body = checker.check(item)
        fields = {k: v for k, v in body.items() if k != "body_from"}
        task_type, params = task_and_params(fields)
        if body.get("body_from") == "previous" and params["method"] in ("GET", "HEAD"):
            if "method" in body:
                raise ValidationError("'body_from' needs a method that carries a body (POST, PUT, PATCH or DELETE)")
            params["method"] = "POST"
        out = {"task_type": task_type, "params": params,
               "retry_policy": retry_policy(body, services().settings)}
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    if body.get("body_from"):
        out["body_from"] = body["body_from"]
    return out


def _parse(body: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], dt.datetime, str]:
    name = acting_client(client_name(body.get("client_name"), required=False), default="default")
    assert name is not None
    steps = [_work(step, f"steps[{i}]") for i, step in enumerate(body["steps"])]
    if steps[0].get("body_from"):
        raise ValidationError("steps[0]: the first step has no previous step to take its body from")
    if "run_at" in body and "initial_delay" in body:
        raise ValidationError("give either 'run_at' or 'initial_delay', not both")
    if "run_at" in body:
        start = max(schedules.parse_time("run_at", body["run_at"], ZoneInfo("UTC")), now)
    else:
        start = now + dt.timedelta(seconds=_seconds("initial_delay", body.get("initial_delay"), 0.0))
    check = None
    raw_check = body.get("condition_check")
    if raw_check is not None:
        try:
            params = httpspec.validate({k: v for k, v in raw_check.items() if k not in CHECK_FIELDS})
        except ValidationError as exc:
            raise ValidationError(f"condition_check: {exc}") from None
        if "equals" in raw_check and "json_field" not in raw_check:
            raise ValidationError("condition_check: 'equals' needs 'json_field', the field it compares")
        check = {"task_type": "http", "params": params, "retry_policy": RetryPolicy(0, 1.0, 1.0).to_json(),
                 **{k: raw_check[k] for k in CHECK_FIELDS if k in raw_check}}
    elif any(k in body for k in ("condition_check_delay", "condition_check_retries", "condition_check_interval")):
        raise ValidationError("'condition_check_delay', '_retries' and '_interval' need a 'condition_check'")
    spec = {
        "steps": steps,
        "check": check,
        "check_delay_s": _seconds("condition_check_delay", body.get("condition_check_delay"), 0.0),
        "check_retries": body.get("condition_check_retries", DEFAULT_CHECK_RETRIES),
        "check_interval_s": _seconds("condition_check_interval", body.get("condition_check_interval"),
                                     DEFAULT_CHECK_INTERVAL_S),
        "fallback": _work(body["fallback"], "fallback") if body.get("fallback") is not None else None,
    }
    return spec, start, name


@bp.post("/workflows")
@doc("Create a workflow: steps run in order, each followed by a condition check; a fallback when "
     "a step fails or the condition never passes", tag="workflows", body="WorkflowCreate",
     responses={201: "WorkflowCreated"})
def create() -> Any:
    now = utcnow()
    spec, start, name = _parse(g.body, now)
    svc = services()
    cid = svc.client_id(name)
    assert cid is not None
    check_quota(name, 1)
    workflow_id = new_id()
    with transaction(svc.engine) as conn:
        store.create(conn, workflow_id=workflow_id, client_id=cid, spec=spec, start_at=start)
    log.info("workflow created", extra={"action": "workflow_created", "workflow_id": workflow_id, "client": name,
                                        "steps": len(spec["steps"]), "start_at": iso(start)})
    response = jsonify({"id": workflow_id, "status": "scheduled", "start_at": iso(start),
                        "message": f"workflow created; step 1 of {len(spec['steps'])} starts at {iso(start)}"})
    response.status_code = 201
    response.headers["Location"] = f"/workflows/{workflow_id}"
    return response


def _shown_work(work: dict[str, Any] | None) -> dict[str, Any] | None:
    if work is None:
        return None
    return {**work, "params": redact.redact_params(work["params"])}


def workflow_json(row: dict[str, Any], items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec = row["spec"]
    out: dict[str, Any] = {
        "id": row["id"],
        "client_name": row["client_name"],
        "status": row["status"],
        "phase": row["phase"],
        "step": row["position"] + 1,
        "steps": len(spec["steps"]),
        "checks": row["checks"],
        "message": row["message"],
        "next_at": iso(row["next_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "finished_at": iso(row["finished_at"]),
        "spec": {**spec, "steps": [_shown_work(s) for s in spec["steps"]], "check": _shown_work(spec.get("check")),
                 "fallback": _shown_work(spec.get("fallback"))},
    }
    if items is not None:
        out["items"] = [{
            "kind": i["kind"], "position": i["position"], "step": i["position"] + 1, "attempt": i["attempt"],
            "task_id": i["task_id"], "status": i["status"], "outcome": i["outcome"], "error": i["error"],
            "created_at": iso(i["created_at"]),
            "attempts": [{**a, "started_at": iso(a["started_at"]), "finished_at": iso(a["finished_at"])}
                         for a in i["attempts"]],
        } for i in items]
    return out


def _load(workflow_id: str) -> dict[str, Any]:
    with transaction(services().engine) as conn:
        row = store.get(conn, workflow_id)
    if row is None:
        raise NotFound(f"no workflow with id {workflow_id!r}")
    who = principal()
    if who is not None and not who.admin and row["client_name"] != who.name:
        raise Forbidden("Forbidden: Workflow does not belong to this user")
    return row


@bp.get("/workflows/<workflow_id>")
@doc("One workflow: where it is, and every step's, check's and fallback's attempts", tag="workflows",
     responses={200: "Workflow"})
def get_workflow(workflow_id: str) -> Any:
    row = _load(workflow_id)
    with transaction(services().engine) as conn:
        items = store.items(conn, workflow_id)
    return jsonify(workflow_json(row, items))


@bp.get("/workflows")
@doc("The caller's workflows, newest first", tag="workflows", query="WorkflowsQuery",
     responses={200: "WorkflowList"})
def list_workflows() -> Any:
    return listing("workflows", store.list_workflows, store.count, workflow_json)


@bp.delete("/workflows/<workflow_id>")
@doc("Cancel a workflow: if scheduled it never starts; if running it stops before its next step",
     tag="workflows", responses={200: "WorkflowCancelled"}, errors=(409,))
def cancel(workflow_id: str) -> Any:
    _load(workflow_id)  # exists, and is the caller's
    with transaction(services().engine) as conn:
        now = store.lock(conn, workflow_id)  # the state a concurrent move left, not the one read above
        assert now is not None
        before = now["status"]
        message = _cancel_message(now)
        if not store.cancel(conn, workflow_id, message):
            raise Conflict(f"workflow {workflow_id} already finished ({before}); there is nothing to cancel")
    log.info("workflow cancelled", extra={"action": "workflow_cancelled", "workflow_id": workflow_id, "was": before})
    return jsonify({"id": workflow_id, "status": "cancelled", "message": message})


def _cancel_message(state: dict[str, Any]) -> str:
    if state["status"] == "scheduled":
        return "cancelled before it started; no step will run"
    step = state["position"] + 1
    where = {"step": f"step {step}", "check": f"the condition check after step {step}",
             "fallback": "the fallback"}.get(state["phase"], "its current step")
    return f"cancelled while {where} was running; nothing further starts"
