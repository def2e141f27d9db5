"""Accepting requests and reading them back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.engine import RawTransaction

_ENSURE_CLIENT = text(
    """
    INSERT INTO clients (name) VALUES (:name)
    ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id
    """
)

# One round trip: consult the cache and the process status, insert the task, its run and its
# first event. A cache hit is recorded as a completed, cached task and gets no run at all.
_CREATE_SQL = """
    WITH c AS (
        SELECT result FROM cache WHERE task_type = $3 AND params_key = $6
    ),
    p AS (SELECT status FROM processes WHERE task_type = $3),
    t AS (
        INSERT INTO tasks (id, client_id, task_type, params, params_key, status, cached, result,
                           retry_policy, finished_at)
        SELECT $1, $4, $3, $5, $6,
               CASE WHEN EXISTS (SELECT 1 FROM c) THEN 'completed'
                    WHEN (SELECT status FROM p) = 'suspended' THEN 'held'
                    ELSE 'queued' END,
               EXISTS (SELECT 1 FROM c),
               (SELECT result FROM c),
               $7,
               CASE WHEN EXISTS (SELECT 1 FROM c) THEN now() END
        RETURNING id, status, cached, result, created_at
    ),
    r AS (
        INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
        SELECT $2, t.id, $3, 'pending', t.created_at, t.created_at
        FROM t WHERE NOT t.cached
        RETURNING id
    ),
    e AS (
        INSERT INTO task_events (task_id, run_id, kind, message)
        SELECT t.id,
               CASE WHEN t.cached THEN NULL ELSE $2 END,
               t.status,
               CASE t.status
                    WHEN 'completed' THEN 'served from the cache; nothing was enqueued'
                    WHEN 'held' THEN 'accepted and held: ' || $3 || ' is suspended'
                    ELSE 'accepted; queued for dispatch' END
        FROM t
    )
    SELECT status, cached, result, created_at, (SELECT status FROM p) AS process_status FROM t
"""
# The hot statement of the API: prepared once per connection, so PostgreSQL plans it once.
_CREATE_NAME = "tasker_create_request"
_CREATE_PREPARE = f"PREPARE {_CREATE_NAME} (text, text, text, int, jsonb, text, jsonb) AS {_CREATE_SQL}"
_CREATE_EXECUTE = f"EXECUTE {_CREATE_NAME} (%s, %s, %s, %s, %s, %s, %s)"


@dataclasses.dataclass(frozen=True)
class Accepted:
    status: str
    cached: bool
    result: Any
    created_at: dt.datetime
    #: the status of the task type's process when the request was stored
    process_status: str | None = None


@dataclasses.dataclass(frozen=True)
class RequestRow:
    rid: str
    seq: int
    task: str
    params: Any
    status: str
    cached: bool
    result: Any
    error: str | None
    attempts: int
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


def ensure_client(conn: Connection, name: str) -> int:
    return int(conn.execute(_ENSURE_CLIENT, {"name": name}).scalar_one())


def client_id(conn: Connection, name: str) -> int | None:
    value = conn.execute(text("SELECT id FROM clients WHERE name = :name"), {"name": name}).scalar()
    return None if value is None else int(value)


def create_request(
    tx: RawTransaction,
    *,
    task_id: str,
    run_id: str,
    client_id: int,
    task_type: str,
    params: Any,
    params_key: str | None,
    retry_policy: dict[str, Any] | None,
) -> Accepted:
    """Store a request, its run and its first event in one statement.

    Takes a raw psycopg2 cursor (``db.engine.raw_transaction``): this is the hot path of the
    API, and the statement is prepared once per connection.
    """
    cursor = tx.cursor
    prepared = tx.info.setdefault("prepared", set())
    if _CREATE_NAME not in prepared:
        cursor.execute(_CREATE_PREPARE)
        prepared.add(_CREATE_NAME)
    cursor.execute(
        _CREATE_EXECUTE,
        (
            task_id, run_id, task_type, client_id, json.dumps(params), params_key,
            None if retry_policy is None else json.dumps(retry_policy),
        ),
    )
    status, cached, result, created_at, process_status = cursor.fetchone()
    return Accepted(status=status, cached=cached, result=result, created_at=created_at,
                    process_status=process_status)


_LIST = text(
    """
    SELECT t.id, t.seq, t.task_type, t.params, t.status, t.cached, t.result, t.error,
           t.created_at, t.updated_at, t.finished_at,
           COALESCE((SELECT max(r.attempt) FROM runs r WHERE r.task_id = t.id), 0) AS attempts
    FROM tasks t
    WHERE t.client_id = :client_id AND (CAST(:cursor AS bigint) IS NULL OR t.seq < :cursor)
    ORDER BY t.seq DESC
    LIMIT :limit
    """
)


def list_requests(
    conn: Connection, client_id: int, limit: int, cursor: int | None
) -> tuple[list[RequestRow], int | None]:
    """A client's requests, newest first; ``cursor`` is the ``seq`` to continue below."""
    rows = conn.execute(_LIST, {"client_id": client_id, "cursor": cursor, "limit": limit + 1}).all()
    items = [
        RequestRow(
            rid=r.id, seq=r.seq, task=r.task_type, params=r.params, status=r.status,
            cached=r.cached, result=r.result, error=r.error, attempts=r.attempts,
            created_at=r.created_at, updated_at=r.updated_at, finished_at=r.finished_at,
        )
        for r in rows[:limit]
    ]
    next_cursor = items[-1].seq if len(rows) > limit and items else None
    return items, next_cursor
