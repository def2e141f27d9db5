"""Process status per task type: ``active``, ``error``, ``queue``, ``suspended``.

Automatic changes are conditional so they never override an operator: ``queue`` and ``error``
are only set on a type that is not suspended, and only cleared from themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclasses.dataclass(frozen=True)
class ProcessRow:
    task_type: str
    status: str
    reason: str | None
    since: dt.datetime
    backlog: int
    dispatched: int
    running: int
    workers: int


def ensure_processes(conn: Connection, task_types: list[str]) -> None:
    conn.execute(
        text(
            """
            INSERT INTO processes (task_type, status)
            SELECT t, 'active' FROM unnest(CAST(:types AS text[])) AS t
            ON CONFLICT (task_type) DO NOTHING
            """
        ),
        {"types": task_types},
    )


def list_processes(conn: Connection, task_types: list[str], live_within_s: float) -> list[ProcessRow]:
    rows = conn.execute(
        text(
            """
            SELECT p.task_type, p.status, p.reason, p.since,
                   (SELECT count(*) FROM runs r WHERE r.task_type = p.task_type AND r.status IN ('pending', 'retry_wait')) AS backlog,
                   (SELECT count(*) FROM runs r WHERE r.task_type = p.task_type AND r.status = 'dispatched') AS dispatched,
                   (SELECT count(*) FROM runs r WHERE r.task_type = p.task_type AND r.status = 'running') AS running,
                   (SELECT count(*) FROM workers w
                     WHERE w.kind = 'tasker' AND w.heartbeat_at > now() - :live * interval '1 second'
                       AND (cardinality(w.queues) = 0 OR p.task_type = ANY(w.queues))) AS workers
            FROM processes p
            WHERE p.task_type = ANY(CAST(:types AS text[]))
            ORDER BY p.task_type
            """
        ),
        {"types": task_types, "live": live_within_s},
    ).all()
    return [ProcessRow(**r._mapping) for r in rows]


def mark(conn: Connection, task_type: str, status: str, reason: str, only_from: tuple[str, ...]) -> bool:
    """Set ``status`` if the current one is in ``only_from``; True if it changed."""
    result = conn.execute(
        text(
            """
            UPDATE processes SET status = :status, reason = :reason, since = now()
            WHERE task_type = :t AND status = ANY(CAST(:from AS text[]))
            """
        ),
        {"t": task_type, "status": status, "reason": reason, "from": list(only_from)},
    )
    return bool(result.rowcount)


def suspend(conn: Connection, task_type: str, reason: str) -> None:
    """Operator suspension: due work of this type waits as ``held``; runs in flight finish."""
    conn.execute(
        text(
            """
            UPDATE processes SET status = 'suspended', reason = :reason, since = now()
            WHERE task_type = :t AND status <> 'suspended'
            """
        ),
        {"t": task_type, "reason": reason},
    )
    conn.execute(
        text(
            """
            WITH h AS (
                UPDATE tasks SET status = 'held', updated_at = now()
                WHERE task_type = :t AND status = 'queued'
                  AND EXISTS (SELECT 1 FROM runs r WHERE r.task_id = tasks.id AND r.status = 'pending')
                RETURNING id
            )
            INSERT INTO task_events (task_id, kind, message)
            SELECT id, 'held', 'held: ' || :t || ' was suspended by an operator' FROM h
            """
        ),
        {"t": task_type},
    )


def resume(conn: Connection, task_type: str, reason: str) -> None:
    """Back to ``active``; held work becomes queued and is dispatched in arrival order."""
    conn.execute(
        text(
            """
            UPDATE processes SET status = 'active', reason = :reason, since = now()
            WHERE task_type = :t AND status <> 'active'
            """
        ),
        {"t": task_type, "reason": reason},
    )
    conn.execute(
        text(
            """
            WITH h AS (
                UPDATE tasks SET status = 'queued', updated_at = now()
                WHERE task_type = :t AND status = 'held'
                RETURNING id
            )
            INSERT INTO task_events (task_id, kind, message)
            SELECT id, 'queued', 'released: ' || :t || ' is active again' FROM h
            """
        ),
        {"t": task_type},
    )
