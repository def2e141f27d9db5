"""The ``/tasks`` resource: tasks that run now, later or on a schedule (the seeds' Scheduler
Service shapes, plus built-in tasks)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, current_app, g, jsonify, redirect

from api.auth import acting_client, check_owner, principal
from api.body import client_name, retry_policy
from api.limits import check_quota
from api.openapi import doc
from api.services import services
from core import catalogue, httpspec, redact
from core import schedule as schedules
from core.clock import iso, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationError
from core.ids import new_id
from db.engine import transaction
from db.store import tasks as store

bp = Blueprint("tasks", __name__)
log = logging.getLogger("tasker.api")


def _log(action: str, task_id: str, message: str, **fields: Any) -> None:
    log.info(message, extra={"action": action, "task_id": task_id, **fields})

HTTP_FIELDS = httpspec.FIELDS


def _parse(body: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    task_type, params = task_and_params(body)
    sched = schedules.parse({k: body[k] for k in schedules.FIELDS if k in body}, now,
                            services().settings.min_interval_s)
    first = sched.first_fire(now)
    assert first is not None
    name = acting_client(client_name(body.get("client_name"), required=False), default="default")
    return {"task_type": task_type, "params": params, "schedule": sched, "first_due": first,
            "retry_policy": retry_policy(body, services().settings), "client_name": name}


def task_and_params(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The task type and normalised params of a task spec (an HTTP call or a built-in task);
    also what a workflow's steps are. The spec's variant schema (TaskCreate, WorkflowStep)
    has checked its shape; the task type's own rules apply here."""
    if "url" in body:
        return "http", httpspec.validate({k: body[k] for k in HTTP_FIELDS if k in body})
    task_type: str = body["task"]
    return task_type, catalogue.get(task_type).validate(body["params"])


def _create_all(specs: list[dict[str, Any]], now: dt.datetime) -> list[tuple[str, str, str]]:
    """Store every spec in one transaction: all or nothing."""
    svc = services()
    client_ids = {spec["client_name"]: svc.client_id(spec["client_name"]) for spec in specs}
    for name in client_ids:  # the whole batch fits, or nothing is stored
        check_quota(name, sum(spec["client_name"] == name for spec in specs))
    created = []
    with transaction(svc.engine) as conn:
        for spec in specs:
            task_id, run_id = new_id(), new_id()
            sched: schedules.Schedule = spec["schedule"]
            cid = client_ids[spec["client_name"]]
            assert cid is not None
            status = store.create_task(
                conn, task_id=task_id, run_id=run_id, client_id=cid, task_type=spec["task_type"],
                params=spec["params"], retry_policy=spec["retry_policy"],
                schedule=None if sched.kind == "now" else sched.to_json(), first_due=spec["first_due"], now=now,
            )
            created.append((task_id, run_id, status))
    for spec, (task_id, run_id, status) in zip(specs, created, strict=True):
        _log("created", task_id, "task created", task_type=spec["task_type"], run_id=run_id, status=status,
             client=spec["client_name"], due=iso(spec["first_due"]))
    return created


def _kick(spec: dict[str, Any], run_id: str, status: str) -> None:
    if status == "queued" and spec["schedule"].kind == "now":
        services().dispatcher.submit(spec["task_type"], run_id)


@bp.post("/tasks")
@doc("Create a task: an HTTP call or a built-in task, now, later or on a schedule", tag="tasks",
     body="TaskCreate", responses={201: "TaskCreated"})
def create() -> Any:
    now = utcnow()
    spec = _parse(g.body, now)
    [(task_id, run_id, status)] = _create_all([spec], now)
    _kick(spec, run_id, status)
    when = "now" if status != "scheduled" else f"at {iso(spec['first_due'])}"
    response = jsonify({"id": task_id, "message": f"task created; it runs {when}", "status": status,
                        "next_run_datetime": iso(spec["first_due"])})
    response.status_code = 201
    response.headers["Location"] = f"/tasks/{task_id}"
    return response


@bp.post("/tasks/batch")
@doc("Create up to 100 tasks at once: all or nothing", tag="tasks", body="TaskBatch",
     responses={201: "TaskBatchCreated"})
def create_batch() -> Any:
    items = g.body["tasks"]
    task_schema = current_app.extensions["tasker_schemas"]["TaskCreate"]
    now = utcnow()
    specs = []
    for i, item in enumerate(items):  # all validated before anything is stored
        try:
            specs.append(_parse(task_schema.check(item), now))
        except ValidationError as exc:
            raise ValidationError(f"tasks[{i}]: {exc}") from None
    created = _create_all(specs, now)
    for spec, (_, run_id, status) in zip(specs, created, strict=True):
        _kick(spec, run_id, status)
    return jsonify({"ids": [c[0] for c in created], "message": f"{len(created)} tasks created"}), 201


def task_json(row: dict[str, Any]) -> dict[str, Any]:
    last = row.get("last_run")
    return {
        "id": row["id"],
        "client_name": row["client_name"],
        "task": row["task_type"],
        "params": redact.redact_params(row["params"]),  # credentials stay stored, never shown
        "status": row["status"],
        "schedule": row["schedule"] or {"kind": "now"},
        "next_run_datetime": iso(row["next_run_at"]) if row["status"] in ("scheduled", "queued", "held") else None,
        "run_count": row["run_count"],
        "last_run": last,
        "result": row["result"],
        "error": row["error"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def _listing_client(name: str | None) -> int | None:
    """Whose tasks a listing shows: a client's own; an admin's own, or ``client=*`` (everyone)
    or a named client's. Without keys, everyone's unless a name is given. -1: nobody's."""
    who = principal()
    if name == "*":
        if who is not None and not who.admin:
            raise Forbidden("Forbidden: listing every client's tasks needs an admin API key")
        return None
    if name:
        acting_client(name)  # a client may only name itself
        cid = services().client_id(name, create=False)
        return -1 if cid is None else cid
    return None if who is None else who.client_id


def _load(task_id: str) -> dict[str, Any]:
    with transaction(services().engine) as conn:
        row = store.get(conn, task_id)
    if row is None:
        raise NotFound(f"no task with id {task_id!r}")
    check_owner(row)
    return row


@bp.get("/tasks/<task_id>")
@bp.get("/tasks/id/<task_id>")
@doc("One task: its spec (secrets redacted), status, schedule and last run", tag="tasks",
     responses={200: "Task"})
def get_task(task_id: str) -> Any:
    return jsonify(task_json(_load(task_id)))


@bp.get("/tasks")
@doc("The caller's tasks, newest first, with a total count", tag="tasks", query="TasksQuery",
     responses={200: "TaskList"})
def list_tasks() -> Any:
    return listing("tasks", store.list_tasks, store.count, task_json, client=g.query.get("client_name"))


def listing(key: str, page: Any, count: Any, shown: Any, client: str | None = None) -> Any:
    """A newest-first page of the caller's (or, for an admin, anyone's) tasks or workflows,
    with the total count: ``state``, ``limit``, ``cursor`` and ``client`` of the checked query."""
    args = g.query
    state = args.get("state", "all")
    states = None if state == "all" else [state]
    limit = args.get("limit", 50)
    cid = _listing_client(args.get("client") or client)
    if cid == -1:
        return jsonify({"count": 0, key: [], "next_cursor": None})
    with transaction(services().engine) as conn:
        rows, next_cursor = page(conn, client_id=cid, states=states, limit=limit, cursor=args.get("cursor"))
        total = count(conn, client_id=cid, states=states)
    return jsonify({"count": total, key: [shown(r) for r in rows],
                    "next_cursor": None if next_cursor is None else str(next_cursor)})


@bp.delete("/tasks/<task_id>")
@doc("Cancel a task: it never fires again", tag="tasks", responses={200: "TaskChanged"}, errors=(409,))
def cancel(task_id: str) -> Any:
    row = _load(task_id)
    with transaction(services().engine) as conn:
        before = store.cancel(conn, task_id)
    if before is None:
        raise Conflict(f"task {task_id} already finished ({row['status']}); there is nothing to cancel")
    _log("cancelled", task_id, "task cancelled", was=before)
    return jsonify({"id": task_id, "status": "cancelled", "message": f"cancelled (it was {before})"})


def _pause(task_id: str) -> dict[str, Any]:
    row = _load(task_id)
    with transaction(services().engine) as conn:
        ok = store.pause(conn, task_id)
    if not ok:
        raise Conflict(f"task {task_id} is {row['status']}; only scheduled, queued, held or running tasks can be paused")
    _log("paused", task_id, "task paused")
    return {"id": task_id, "status": "paused"}


def _resume(task_id: str) -> dict[str, Any]:
    row = _load(task_id)
    if row["status"] != "paused":
        raise Conflict(f"task {task_id} is {row['status']}; only paused tasks can be resumed")
    now = utcnow()
    sched = schedules.Schedule.from_json(row["schedule"])
    svc = services()
    with transaction(svc.engine) as conn:
        if sched.periodic:
            due = sched.next_fire(now - dt.timedelta(microseconds=1), row["run_count"])
        else:
            last = store.last_due(conn, task_id) or now
            due = last if last > now else sched.after_downtime(last, now, svc.settings.misfire_grace_s, 0)
        run_id = new_id()
        store.resume(conn, task_id, row["task_type"], run_id, due, now)
    _log("resumed", task_id, "task resumed", due=iso(due))
    if due is not None and due <= now + dt.timedelta(milliseconds=500) and row["schedule"] is None:
        svc.dispatcher.submit(row["task_type"], run_id)
    return {"id": task_id, "status": "scheduled" if due else "completed", "next_run_datetime": iso(due)}


@bp.post("/tasks/<task_id>/pause")
@doc("Pause a task until it is resumed", tag="tasks", responses={200: "TaskChanged"}, errors=(409,))
def pause(task_id: str) -> Any:
    return jsonify(_pause(task_id))


@bp.post("/tasks/<task_id>/resume")
@doc("Resume a paused task", tag="tasks", responses={200: "TaskChanged"}, errors=(409,))
def resume(task_id: str) -> Any:
    return jsonify(_resume(task_id))


def _bulk(action: Any) -> Any:
    ids = g.body["ids"]
    outcomes = {}
    for task_id in ids:
        try:
            outcomes[task_id] = {"success": True, **action(task_id)}
        except (NotFound, Conflict, Forbidden) as exc:
            outcomes[task_id] = {"success": False, "error": str(exc)}
    return jsonify({"results": outcomes})


@bp.post("/tasks/pause")
@doc("Pause several tasks; each id gets its own outcome", tag="tasks", body="TaskIds",
     responses={200: "BulkResults"})
def pause_many() -> Any:
    return _bulk(_pause)


@bp.post("/tasks/resume")
@doc("Resume several tasks; each id gets its own outcome", tag="tasks", body="TaskIds",
     responses={200: "BulkResults"})
def resume_many() -> Any:
    return _bulk(_resume)


@bp.get("/tasks/<task_id>/results")
@doc("Every run and attempt of a task, oldest first", tag="tasks", responses={200: "TaskHistory"})
def results(task_id: str) -> Any:
    row = _load(task_id)
    with transaction(services().engine) as conn:
        entries = store.history(conn, task_id)
    for e in entries:
        e["time"] = iso(e["time"])
    return jsonify({"id": task_id, "status": row["status"], "history": entries})



@bp.patch("/tasks/<task_id>")
@doc("Change the time, schedule, target, headers, body or retries of a scheduled or paused task",
     tag="tasks", body="TaskPatch", responses={200: "Task"}, errors=(409,))
def modify(task_id: str) -> Any:
    """Change time, schedule, target, headers, body or retries of a scheduled or paused task."""
    row = _load(task_id)
    if row["status"] not in ("scheduled", "paused"):
        raise Conflict(
            f"task {task_id} is {row['status']}; only scheduled or paused tasks can be modified "
            "(a task that is queued or running is already on its way)"
        )
    body = g.body
    if "task" in body and body["task"] != row["task_type"]:
        raise ValidationError("the task type of a task cannot change; create a new task instead")
    now = utcnow()
    if row["task_type"] == "http":
        # a header sent back as "[redacted]" (or the URL as shown) keeps its stored value
        merged = redact.restore_params({**row["params"], **{k: body[k] for k in HTTP_FIELDS if k in body}},
                                       row["params"])
        if "post_data" in body:  # a JSON POST replaces the stored body, and its method unless given
            merged.pop("body", None)
            if "method" not in body:
                merged.pop("method", None)
        params = httpspec.validate(merged)
    else:
        params = catalogue.get(row["task_type"]).validate(body.get("params", row["params"]))
    schedule_fields = {k: body[k] for k in schedules.FIELDS if k in body}
    if schedule_fields:
        sched = schedules.parse(schedule_fields, now, services().settings.min_interval_s)
    else:
        sched = schedules.Schedule.from_json(row["schedule"])
    policy = retry_policy(body, services().settings) or row["retry_policy"]
    due = sched.first_fire(now) if schedule_fields else (row["next_run_at"] or now)
    assert due is not None
    with transaction(services().engine) as conn:
        ok = store.replace_plan(
            conn, task_id, row["task_type"], params=params, retry_policy=policy,
            schedule=None if sched.kind == "now" else sched.to_json(), run_id=new_id(), due=due, now=now,
            was_paused=row["status"] == "paused",
        )
    if not ok:
        raise Conflict(f"task {task_id} changed state meanwhile; read it again and retry")
    _log("modified", task_id, "task modified", due=iso(due))
    return jsonify(task_json(_load(task_id)))


@bp.post("/tasks/<task_id>/retry")
@doc("Run a failed task again", tag="tasks", responses={202: "TaskChanged"}, errors=(409,))
def retry(task_id: str) -> Any:
    row = _load(task_id)
    run_id = new_id()
    check_quota(row["client_name"])  # a failed task becomes active again
    with transaction(services().engine) as conn:
        ok = store.retry_failed(conn, task_id, row["task_type"], run_id)
    if not ok:
        raise Conflict(f"task {task_id} is {row['status']}; only failed tasks can be retried")
    services().dispatcher.submit(row["task_type"], run_id)
    _log("retried", task_id, "failed task queued again", run_id=run_id)
    return jsonify({"id": task_id, "status": "queued", "message": "running it again"}), 202


@bp.get("/jobs")
@doc("Running, scheduled and finished tasks keyed by id (the seed scheduler's view)", tag="tasks",
     query="JobsQuery", responses={200: "Jobs"})
def jobs() -> Any:
    """The seed Tornado scheduler's view: running, scheduled and history, keyed by id."""
    limit = g.query.get("limit", 100)
    out: dict[str, dict[str, Any]] = {"running": {}, "scheduled": {}, "history": {}}
    groups = {"running": ["running", "queued", "held"], "scheduled": ["scheduled", "paused"],
              "history": ["completed", "failed", "cancelled"]}
    cid = _listing_client(g.query.get("client"))
    if cid == -1:
        return jsonify(out)
    with transaction(services().engine) as conn:
        for key, states in groups.items():
            rows, _ = store.list_tasks(conn, client_id=cid, states=states, limit=limit, cursor=None)
            out[key] = {r["id"]: task_json(r) for r in rows}
    return jsonify(out)


@bp.get("/")
@doc("Redirects to /jobs", tag="tasks", responses={302: None})
def root() -> Any:
    return redirect("/jobs", code=302)
