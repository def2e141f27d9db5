"""The seed-compatible endpoints. Every answer is ``{"<endpoint name>": {...}}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify

from api.auth import acting_client, principal, require_admin
from api.body import client_name, retry_policy
from api.limits import check_quota
from api.openapi import doc
from api.services import services
from core import catalogue, redact
from core.clock import iso
from core.errors import QueueUnavailable
from core.ids import new_id
from core.statuses import ProcessStatus, TaskStatus
from db.engine import raw_transaction, transaction
from db.store import processes
from db.store import requests as store

bp = Blueprint("seed", __name__)
log = logging.getLogger("tasker.api")

@bp.post("/process")
@doc("Run a built-in task now (the seed API); a deterministic task's cached result answers at once",
     tag="seed", body="ProcessRequest", responses={200: "ProcessAnswer", 201: "ProcessAnswer", 202: "ProcessAnswer"})
def process() -> Any:
    body = g.body
    task = body["task"]
    spec = catalogue.get(task)
    name = acting_client(client_name(body.get("client_name"), required=principal() is None))
    assert name is not None
    params = spec.validate(body.get("params"))
    policy = retry_policy(body, services().settings)

    svc = services()
    cid = svc.client_id(name)
    assert cid is not None
    check_quota(cid)
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
        "params": redact.redact_params(row.params),
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
@doc("A client's requests, newest first (the seed API); a JSON body is read like the query string",
     tag="seed", query="RequestsQuery", query_from_body=True, responses={200: "RequestsStatus"})
def get_requests_status() -> Any:
    merged = g.query
    name = acting_client(client_name(merged.get("client_name"), required=principal() is None))
    assert name is not None
    limit, cursor = merged.get("limit", 50), merged.get("cursor")
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
@doc("Status of every task type; queue details for admin keys", tag="seed", responses={200: "ProcessesStatus"})
def get_processes_status() -> Any:
    """Every task type's status; the operational details (reason, counts, workers, queue) only
    for an admin key (or with keys off): a client sees ``status`` and ``since``."""
    who = principal()
    details = who is None or who.admin
    svc = services()
    types = catalogue.names()
    live_within = max(3 * svc.settings.poll_seconds, 30)
    with transaction(svc.engine) as conn:
        rows = processes.list_processes(conn, types, live_within)
    out: dict[str, Any] = {}
    for row in rows:
        if not details:
            out[row.task_type] = {"status": row.status, "since": iso(row.since)}
            continue
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
@doc("Suspend or resume task types (admin)", tag="seed", body="SetProcessesStatus",
     responses={200: "ProcessesSet"})
def set_processes_status() -> Any:
    require_admin()
    body = g.body
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
