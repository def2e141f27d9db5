"""Tasks with a schedule (the ``/tasks`` resource): create, read, list, pause, resume, cancel."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COLUMNS = """
    t.id, t.seq, t.task_type, t.params, t.status, t.result, t.error, t.schedule, t.run_count,
    t.next_run_at, t.retry_policy, t.created_at, t.updated_at, t.finished_at, c.name AS client_name,
    (SELECT json_build_object('run_id', r.id, 'status', r.status, 'attempts', r.attempt,
                              'scheduled_for', r.scheduled_for, 'finished_at', r.finished_at,
                              'error', r.error)
       FROM runs r WHERE r.task_id = t.id AND r.attempt > 0 ORDER BY r.seq DESC LIMIT 1) AS last_run
"""


def create_task(
    conn: Connection, *, task_id: str, run_id: str, client_id: int, task_type: str, params: Any,
    retry_policy: dict[str, Any] | None, schedule: dict[str, Any] | None, first_due: dt.datetime,
    now: dt.datetime,
) -> str:
    status = "scheduled" if first_due > now + dt.timedelta(milliseconds=500) else "queued"
    conn.execute(
        text(
            """
            WITH t AS (
                INSERT INTO tasks (id, client_id, task_type, params, status, retry_policy, schedule,
                                   run_count, next_run_at)
                VALUES (:id, :client_id, :task_type, CAST(:params AS jsonb),
                        CASE WHEN :status = 'queued' AND EXISTS (
                            SELECT 1 FROM processes WHERE task_type = :task_type AND status = 'suspended')
                             THEN 'held' ELSE :status END,
                        CAST(:retry AS jsonb), CAST(:schedule AS jsonb), 1, :due)
                RETURNING id, status
            ),
            r AS (
                INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
                SELECT :run_id, t.id, :task_type, 'pending', :due, :due FROM t
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            SELECT t.id, :run_id, 'scheduled',
                   'scheduled; first run at ' || to_char(CAST(:due AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
            FROM t
            """
        ),
        {
            "id": task_id, "run_id": run_id, "client_id": client_id, "task_type": task_type,
            "params": json.dumps(params), "status": status,
            "retry": None if retry_policy is None else json.dumps(retry_policy),
            "schedule": None if schedule is None else json.dumps(schedule), "due": first_due,
        },
    )
    return status


def get(conn: Connection, task_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM tasks t JOIN clients c ON c.id = t.client_id WHERE t.id = :id"),
        {"id": task_id},
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def list_tasks(
    conn: Connection, *, client_id: int | None, states: list[str] | None, limit: int, cursor: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    rows = conn.execute(
        text(
            f"""
            SELECT {_COLUMNS} FROM tasks t JOIN clients c ON c.id = t.client_id
            WHERE (CAST(:client_id AS int) IS NULL OR t.client_id = :client_id)
              AND (CAST(:states AS text[]) IS NULL OR t.status = ANY(CAST(:states AS text[])))
              AND (CAST(:cursor AS bigint) IS NULL OR t.seq < :cursor)
            ORDER BY t.seq DESC LIMIT :limit
            """
        ),
        {"client_id": client_id, "states": states, "cursor": cursor, "limit": limit + 1},
    ).all()
    items = [dict(r._mapping) for r in rows[:limit]]
    return items, (items[-1]["seq"] if len(rows) > limit and items else None)


def count(conn: Connection, *, client_id: int | None, states: list[str] | None) -> int:
    return int(conn.execute(
        text(
            """
            SELECT count(*) FROM tasks t
            WHERE (CAST(:client_id AS int) IS NULL OR t.client_id = :client_id)
              AND (CAST(:states AS text[]) IS NULL OR t.status = ANY(CAST(:states AS text[])))
            """
        ),
        {"client_id": client_id, "states": states},
    ).scalar_one())


def _stop_runs(conn: Connection, task_id: str, reason: str) -> None:
    """Runs not started yet never start; fires that never ran no longer count as fired."""
    conn.execute(
        text(
            """
            WITH s AS (
                UPDATE runs SET status = 'cancelled', error = :reason, finished_at = now()
                WHERE task_id = :id AND status IN ('pending', 'dispatched', 'retry_wait')
                RETURNING attempt
            )
            UPDATE tasks SET run_count = run_count - (SELECT count(*) FROM s WHERE attempt = 0)
            WHERE id = :id
            """
        ),
        {"id": task_id, "reason": reason},
    )


def _note(conn: Connection, task_id: str, kind: str, message: str) -> None:
    conn.execute(text("INSERT INTO task_events (task_id, kind, message) VALUES (:id, :kind, :message)"),
                 {"id": task_id, "kind": kind, "message": message})


def _lock_runs(conn: Connection, task_id: str) -> None:
    """Lock a task's runs before its row: the order every other writer uses (claims and records
    update runs, then tasks), so a cancel or pause never deadlocks with a tasker."""
    conn.execute(text("SELECT id FROM runs WHERE task_id = :id ORDER BY seq FOR UPDATE"), {"id": task_id})


def cancel(conn: Connection, task_id: str) -> str | None:
    """Cancel; returns the status it had (None if it was already finished)."""
    _lock_runs(conn, task_id)
    row = conn.execute(
        text(
            """
            WITH old AS (SELECT status FROM tasks WHERE id = :id FOR UPDATE)
            UPDATE tasks SET status = 'cancelled', finished_at = now(), updated_at = now(), next_run_at = NULL
            WHERE id = :id AND status NOT IN ('completed', 'failed', 'cancelled')
            RETURNING (SELECT status FROM old)
            """
        ),
        {"id": task_id},
    ).one_or_none()
    if row is None:
        return None
    _stop_runs(conn, task_id, "cancelled by its client")
    _note(conn, task_id, "cancelled", "cancelled by its client")
    return str(row[0])


def pause(conn: Connection, task_id: str) -> bool:
    _lock_runs(conn, task_id)
    row = conn.execute(
        text(
            """
            UPDATE tasks SET status = 'paused', updated_at = now()
            WHERE id = :id AND status IN ('scheduled', 'queued', 'held', 'running')
            RETURNING id
            """
        ),
        {"id": task_id},
    ).one_or_none()
    if row is None:
        return False
    _stop_runs(conn, task_id, "paused by its client")
    _note(conn, task_id, "paused", "paused by its client")
    return True


def last_due(conn: Connection, task_id: str) -> dt.datetime | None:
    value = conn.execute(
        text("SELECT max(due_at) FROM runs WHERE task_id = :id AND status = 'cancelled'"), {"id": task_id}
    ).scalar()
    return value  # type: ignore[no-any-return,unused-ignore]


def resume(conn: Connection, task_id: str, task_type: str, run_id: str, due: dt.datetime | None, now: dt.datetime) -> bool:
    """Back from paused: its next run is due at ``due`` (None: nothing left to run)."""
    if due is None:
        result = conn.execute(
            text("UPDATE tasks SET status = 'completed', finished_at = now(), updated_at = now(), next_run_at = NULL "
                 "WHERE id = :id AND status = 'paused'"), {"id": task_id})
        return bool(result.rowcount)
    status = "scheduled" if due > now + dt.timedelta(milliseconds=500) else "queued"
    result = conn.execute(
        text("UPDATE tasks SET status = :status, next_run_at = :due, run_count = run_count + 1, updated_at = now() "
             "WHERE id = :id AND status = 'paused'"),
        {"id": task_id, "status": status, "due": due},
    )
    if not result.rowcount:
        return False
    conn.execute(
        text(
            """
            WITH r AS (
                INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
                VALUES (:run_id, :id, :task_type, 'pending', :due, :due)
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            VALUES (:id, :run_id, 'resumed',
                    'resumed; next run at ' || to_char(CAST(:due AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            """
        ),
        {"run_id": run_id, "id": task_id, "task_type": task_type, "due": due},
    )
    return True


def history(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    """Events and attempts of a task, in time order."""
    rows = conn.execute(
        text(
            """
            SELECT at AS time, 'event' AS type, kind, message, run_id, NULL::int AS attempt,
                   NULL::int AS status_code, NULL::text AS response_excerpt, NULL::float AS latency_ms,
                   NULL::text AS error, id AS ord
            FROM task_events WHERE task_id = :id
            UNION ALL
            SELECT COALESCE(started_at, finished_at), 'attempt', outcome,
                   format('attempt %s %s', attempt, outcome), run_id, attempt, http_status,
                   left(response_excerpt, 2000), duration_ms, error, id
            FROM attempts WHERE task_id = :id
            ORDER BY time, ord
            """
        ),
        {"id": task_id},
    ).all()
    return [{k: v for k, v in dict(r._mapping).items() if k != "ord"} for r in rows]


def replace_plan(
    conn: Connection, task_id: str, task_type: str, *, params: Any, retry_policy: dict[str, Any] | None,
    schedule: dict[str, Any] | None, run_id: str, due: dt.datetime, now: dt.datetime, was_paused: bool,
) -> bool:
    """PATCH: new target/schedule/retries for a scheduled or paused task; its waiting run is
    replaced by one at the new time (a paused task stays paused)."""
    row = conn.execute(
        text(
            """
            UPDATE tasks SET params = CAST(:params AS jsonb), retry_policy = CAST(:retry AS jsonb),
                             schedule = CAST(:schedule AS jsonb), next_run_at = :due, updated_at = now()
            WHERE id = :id AND status = CAST(:expected AS text)
            RETURNING id
            """
        ),
        {"id": task_id, "params": json.dumps(params), "retry": None if retry_policy is None else json.dumps(retry_policy),
         "schedule": None if schedule is None else json.dumps(schedule), "due": due,
         "expected": "paused" if was_paused else "scheduled"},
    ).one_or_none()
    if row is None:
        return False
    if was_paused:
        _note(conn, task_id, "modified", "modified while paused")
        return True
    _stop_runs(conn, task_id, "replaced by a modification")
    conn.execute(
        text(
            """
            WITH r AS (
                INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
                VALUES (:run_id, :id, :task_type, 'pending', :due, :due)
            ),
            t AS (UPDATE tasks SET run_count = run_count + 1 WHERE id = :id)
            INSERT INTO task_events (task_id, run_id, kind, message)
            VALUES (:id, :run_id, 'modified',
                    'modified; next run at ' || to_char(CAST(:due AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            """
        ),
        {"run_id": run_id, "id": task_id, "task_type": task_type, "due": due},
    )
    return True


def retry_failed(conn: Connection, task_id: str, task_type: str, run_id: str) -> bool:
    """Run a failed task again, as a new run due now."""
    row = conn.execute(
        text(
            """
            UPDATE tasks SET status = 'queued', error = NULL, finished_at = NULL, updated_at = now(),
                             next_run_at = now()
            WHERE id = :id AND status = 'failed' RETURNING id
            """
        ),
        {"id": task_id},
    ).one_or_none()
    if row is None:
        return False
    conn.execute(
        text(
            """
            WITH r AS (
                INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
                VALUES (:run_id, :id, :task_type, 'pending', now(), now())
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            VALUES (:id, :run_id, 'queued', 'retry requested by its client')
            """
        ),
        {"run_id": run_id, "id": task_id, "task_type": task_type},
    )
    return True
