"""Heartbeats of every Tasker process."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def heartbeat(conn: Connection, worker_id: str, kind: str, queues: list[str], host: str, pid: int) -> None:
    conn.execute(
        text(
            """
            INSERT INTO workers (id, kind, queues, host, pid)
            VALUES (:id, :kind, CAST(:queues AS text[]), :host, :pid)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), queues = EXCLUDED.queues
            """
        ),
        {"id": worker_id, "kind": kind, "queues": queues, "host": host, "pid": pid},
    )


def remove(conn: Connection, worker_id: str) -> None:
    conn.execute(text("DELETE FROM workers WHERE id = :id"), {"id": worker_id})


def prune(conn: Connection, older_than_s: float) -> int:
    result = conn.execute(
        text("DELETE FROM workers WHERE heartbeat_at < now() - :s * interval '1 second'"),
        {"s": older_than_s},
    )
    return int(result.rowcount)
