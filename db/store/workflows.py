"""Workflows: create, read, list, cancel, and the controller's conditional moves.

Every move of a running workflow happens under ``FOR UPDATE`` of its row, in the transaction
that also creates the task it starts and the ``workflow_items`` row whose unique key
(workflow, kind, position, attempt) forbids starting the same step, check or fallback twice.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COLUMNS = """
    w.id, w.seq, w.status, w.phase, w.spec, w.position, w.checks, w.next_at, w.current_task_id,
    w.last_result, w.message, w.created_at, w.updated_at, w.finished_at, w.client_id, c.name AS client_name
"""
#: a workflow the controller must look at: its wait is over, or the task it started ended
_DUE = """
    w.status IN ('scheduled', 'running')
    AND ((w.current_task_id IS NULL AND w.next_at <= now())
         OR EXISTS (SELECT 1 FROM tasks t WHERE t.id = w.current_task_id
                    AND t.status IN ('completed', 'failed', 'cancelled')))
"""


def create(conn: Connection, *, workflow_id: str, client_id: int, spec: dict[str, Any], start_at: dt.datetime) -> None:
    conn.execute(
        text("INSERT INTO workflows (id, client_id, status, phase, spec, next_at) "
             "VALUES (:id, :cid, 'scheduled', 'step', CAST(:spec AS jsonb), :start)"),
        {"id": workflow_id, "cid": client_id, "spec": json.dumps(spec), "start": start_at},
    )


def get(conn: Connection, workflow_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM workflows w JOIN clients c ON c.id = w.client_id WHERE w.id = :id"),
        {"id": workflow_id},
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def _filters(client_id: int | None, states: list[str] | None) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if client_id is not None:
        where.append("w.client_id = :cid")
        params["cid"] = client_id
    if states:
        where.append("w.status = ANY(:states)")
        params["states"] = states
    return where, params


def list_workflows(conn: Connection, *, client_id: int | None, states: list[str] | None, limit: int,
                   cursor: int | None) -> tuple[list[dict[str, Any]], int | None]:
    where, params = _filters(client_id, states)
    if cursor is not None:
        where.append("w.seq < :cursor")
        params["cursor"] = cursor
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM workflows w JOIN clients c ON c.id = w.client_id "
             f"WHERE {' AND '.join(where)} ORDER BY w.seq DESC LIMIT :limit"),
        {**params, "limit": limit + 1},
    ).all()
    out = [dict(r._mapping) for r in rows[:limit]]
    return out, (out[-1]["seq"] if len(rows) > limit else None)


def count(conn: Connection, *, client_id: int | None, states: list[str] | None) -> int:
    where, params = _filters(client_id, states)
    return int(conn.execute(text(f"SELECT count(*) FROM workflows w WHERE {' AND '.join(where)}"), params).scalar_one())


def lock(conn: Connection, workflow_id: str) -> dict[str, Any] | None:
    """The workflow's state, locked until the transaction ends (a controller's move waits)."""
    row = conn.execute(
        text("SELECT status, phase, position FROM workflows WHERE id = :id FOR UPDATE"), {"id": workflow_id}
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def cancel(conn: Connection, workflow_id: str, message: str) -> bool:
    """Cancel unless finished. A running workflow keeps its current task (it finishes) but
    starts nothing more: the controller only moves scheduled and running workflows."""
    result = conn.execute(
        text("""
            UPDATE workflows SET status = 'cancelled', phase = 'done', updated_at = now(), finished_at = now(),
                   next_at = NULL, message = :message
            WHERE id = :id AND status IN ('scheduled', 'running')
        """),
        {"id": workflow_id, "message": message},
    )
    return bool(result.rowcount)


def due_ids(conn: Connection, limit: int) -> list[str]:
    rows = conn.execute(
        text(f"SELECT w.id FROM workflows w WHERE {_DUE} ORDER BY w.next_at NULLS FIRST LIMIT :limit"),
        {"limit": limit},
    ).all()
    return [r[0] for r in rows]


def lock_due(conn: Connection, workflow_id: str) -> dict[str, Any] | None:
    """The workflow, locked, if it still needs a move (another controller may have made it);
    with the state of the task it started."""
    row = conn.execute(
        text(f"""
            SELECT {_COLUMNS}, t.status AS task_status, t.result AS task_result, t.error AS task_error,
                   i.kind AS item_kind
            FROM workflows w JOIN clients c ON c.id = w.client_id
            LEFT JOIN tasks t ON t.id = w.current_task_id
            LEFT JOIN workflow_items i ON i.workflow_id = w.id AND i.task_id = w.current_task_id
            WHERE w.id = :id AND {_DUE}
            FOR UPDATE OF w SKIP LOCKED
        """),
        {"id": workflow_id},
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def record_outcome(conn: Connection, workflow_id: str, task_id: str, outcome: str) -> None:
    conn.execute(
        text("UPDATE workflow_items SET outcome = :outcome WHERE workflow_id = :wid AND task_id = :tid"),
        {"outcome": outcome, "wid": workflow_id, "tid": task_id},
    )


def started(conn: Connection, workflow_id: str, *, kind: str, position: int, attempt: int, task_id: str,
            phase: str, message: str | None, last_result: Any) -> None:
    """The step, check or fallback ``task_id`` started (the unique key refuses a second one)."""
    conn.execute(
        text("INSERT INTO workflow_items (workflow_id, kind, position, attempt, task_id) "
             "VALUES (:wid, :kind, :position, :attempt, :tid)"),
        {"wid": workflow_id, "kind": kind, "position": position, "attempt": attempt, "tid": task_id},
    )
    conn.execute(
        text("""
            UPDATE workflows SET status = 'running', phase = :phase, position = :position, checks = :attempt,
                   current_task_id = :tid, next_at = NULL, message = COALESCE(:message, message),
                   last_result = CAST(:last AS jsonb), updated_at = now()
            WHERE id = :wid
        """),
        {"wid": workflow_id, "phase": phase, "position": position, "attempt": attempt, "tid": task_id,
         "message": message, "last": json.dumps(last_result)},
    )


def wait(conn: Connection, workflow_id: str, *, phase: str, position: int, checks: int, until: dt.datetime,
         last_result: Any) -> None:
    conn.execute(
        text("""
            UPDATE workflows SET status = 'running', phase = :phase, position = :position, checks = :checks,
                   current_task_id = NULL, next_at = :until, last_result = CAST(:last AS jsonb), updated_at = now()
            WHERE id = :wid
        """),
        {"wid": workflow_id, "phase": phase, "position": position, "checks": checks, "until": until,
         "last": json.dumps(last_result)},
    )


def finish(conn: Connection, workflow_id: str, status: str, message: str, last_result: Any) -> None:
    conn.execute(
        text("""
            UPDATE workflows SET status = :status, phase = 'done', current_task_id = NULL, next_at = NULL,
                   message = :message, last_result = CAST(:last AS jsonb), updated_at = now(), finished_at = now()
            WHERE id = :wid
        """),
        {"wid": workflow_id, "status": status, "message": message, "last": json.dumps(last_result)},
    )


def items(conn: Connection, workflow_id: str) -> list[dict[str, Any]]:
    """Every step, check and fallback started, with its task's status and attempt records."""
    rows = conn.execute(
        text("""
            SELECT i.kind, i.position, i.attempt, i.task_id, i.outcome, i.created_at, t.status, t.result, t.error
            FROM workflow_items i LEFT JOIN tasks t ON t.id = i.task_id
            WHERE i.workflow_id = :wid ORDER BY i.id
        """),
        {"wid": workflow_id},
    ).all()
    out = [dict(r._mapping) for r in rows]
    if not out:
        return out
    attempts = conn.execute(
        text("""
            SELECT task_id, run_id, attempt, outcome, started_at, finished_at, duration_ms AS latency_ms,
                   http_status AS status_code, left(response_excerpt, 2000) AS response_excerpt, error, worker_id
            FROM attempts WHERE task_id = ANY(:ids) ORDER BY id
        """),
        {"ids": [i["task_id"] for i in out]},
    ).all()
    by_task: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        record = dict(a._mapping)
        by_task.setdefault(record.pop("task_id"), []).append(record)
    for item in out:
        item["attempts"] = by_task.get(item["task_id"], [])
    return out
