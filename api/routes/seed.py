"""The seed-compatible endpoints. Every answer is ``{"<endpoint name>": {...}}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import acting_client, principal, require_admin
from api.body import client_name, int_arg, json_object, only_fields, retry_policy
from api.services import services
from core import catalogue
from core.clock import iso
from core.errors import QueueUnavailable, ValidationError
from core.ids import new_id
from core.statuses import ProcessStatus, TaskStatus
from db.engine import raw_transaction, transaction
from db.store import processes
from db.store import requests as store

bp = Blueprint("seed", __name__)
log = logging.getLogger("tasker.api")

SETTABLE = (ProcessStatus.ACTIVE.value, ProcessStatus.SUSPENDED.value)


@bp.post("/process")
def process() -> Any:
    body = json_object()
    only_fields(body, ("task", "client_name", "params", "retries"))
    task = body.get("task")
    if task is None:
        raise ValidationError(f"missing 'task': one of {', '.join(catalogue.names())}")
    if not isinstance(task, str):
        raise ValidationError(f"'task' must be a string: one of {', '.join(catalogue.names())}")
    spec = catalogue.get(task)
    name = acting_client(client_name(body.get("client_name"), required=principal() is None))
    assert name is not None
    params = spec.validate(body.get("params"))
    policy = retry_policy(body, services().settings)

    svc = services()
    cid = svc.client_id(name)
    assert cid is not None
    task_id, run_id = new_id(), new_id()
    with raw_transaction(svc.engine) as tx:
        accepted = store.create_request(
            tx, task_id=task_id, run_id=run_id, client_id=cid, task_type=task,
            params=params, params_key=catalogue.params_key(params) if spec.deterministic else None,
            retry_policy=policy,
        )
    log.info(
        "request accepted", extra={"action": "accepted", "task_type": task, "task_id": task_id,
                                   "run_id": None if accepted.cached else run_id,
                                   "client": name, "status": accepted.status},
    )
    if accepted.cached:
        return jsonify({"process": {"rid": task_id, "cached": True, "success": True,
                                    "status": accepted.status, "result": accepted.result}}), 200
    out: dict[str, Any] = {"rid": task_id, "cached": False, "success": True, "status": accepted.status}
    code = 201
    if accepted.status == TaskStatus.HELD:
        out["message"] = f"{task} is suspended; the request is stored and held until it is active again"
        code = 202
    else:
        svc.dispatcher.submit(task, run_id)
        if accepted.process_status == ProcessStatus.QUEUE or svc.dispatcher.queue_down(task):
            out["message"] = "the queue is unreachable; the request is stored and will be sent when it answers"
            code = 202
    return _json({"process": out}, code)


def _json(body: dict[str, Any], status: int) -> Response:
    """The hot path's answer, without jsonify's extra work (it is a fifth of the view's CPU)."""
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def _request_json(row: store.RequestRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rid": row.rid,
        "task": row.task,
        "params": row.params,
        "status": row.status,
        "cached": row.cached,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "finished_at": iso(row.finished_at),
    }
    if row.status == TaskStatus.COMPLETED:
        out["result"] = row.result
    if row.error is not None:
        out["error"] = row.error
    return out


@bp.get("/get_requests_status")
def get_requests_status() -> Any:
    body = json_object(required=False)
    merged = {**request.args.to_dict(), **body}
    only_fields(merged, ("client_name", "limit", "cursor"))
    name = acting_client(client_name(merged.get("client_name"), required=principal() is None))
    assert name is not None
    limit = int_arg("limit", merged.get("limit"), 50, 1, 500)
    cursor_raw = merged.get("cursor")
    cursor = None if cursor_raw in (None, "") else int_arg("cursor", cursor_raw, 0, 1, 2**62)
    svc = services()
    cid = svc.client_id(name, create=False)
    rows: list[store.RequestRow] = []
    next_cursor = None
    if cid is not None:
        with transaction(svc.engine) as conn:
            rows, next_cursor = store.list_requests(conn, cid, limit, cursor)
    return jsonify({"get_requests_status": {
        "client_name": name,
        "requests": [_request_json(r) for r in rows],
        "next_cursor": None if next_cursor is None else str(next_cursor),
        "success": True,
    }})


@bp.get("/get_processes_status")
def get_processes_status() -> Any:
    svc = services()
    types = catalogue.names()
    live_within = max(3 * svc.settings.poll_seconds, 30)
    with transaction(svc.engine) as conn:
        rows = processes.list_processes(conn, types, live_within)
    out: dict[str, Any] = {}
    for row in rows:
        entry: dict[str, Any] = {
            "status": row.status,
            "reason": row.reason,
            "since": iso(row.since),
            "backlog": row.backlog,
            "dispatched": row.dispatched,
            "in_flight": row.running,
            "workers": row.workers,
        }
        try:
            depth = svc.transport.depth(row.task_type)
            entry["queue_depth"] = depth["visible"] + depth["in_flight"] + depth["delayed"]
        except QueueUnavailable as exc:
            entry["queue_depth"] = None
            entry["queue_error"] = str(exc)
        out[row.task_type] = entry
    return jsonify({"get_processes_status": {"processes": out, "success": True}})


@bp.post("/set_processes_status")
def set_processes_status() -> Any:
    require_admin()
    body = json_object()
    if not body:
        raise ValidationError(
            'name at least one task type and its new status, e.g. {"mult3": "suspended"}'
        )
    known = catalogue.names()
    for task_type, status in body.items():
        if task_type not in known:
            raise ValidationError(f"unknown task {task_type!r}; known tasks: {', '.join(known)}")
        if status not in SETTABLE:
            raise ValidationError(
                f"status of {task_type!r} must be 'active' or 'suspended' "
                f"('error' and 'queue' are set by Tasker itself), got {status!r}"
            )
    svc = services()
    with transaction(svc.engine) as conn:
        for task_type, status in body.items():
            if status == ProcessStatus.SUSPENDED:
                processes.suspend(conn, task_type, "suspended by an operator")
            else:
                processes.resume(conn, task_type, "set active by an operator")
            log.info(f"process {task_type} set to {status}", extra={"action": "set_process_status", "task_type": task_type})
    for task_type, status in body.items():
        if status == ProcessStatus.ACTIVE:
            svc.dispatcher.kick(task_type)
    return jsonify({"set_processes_status": {"processes": dict(body), "success": True}})
