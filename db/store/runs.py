"""Claiming runs for execution and recording what happened, for a tasker.

A claim takes a lease; recording is conditional on still holding it (same worker, same
attempt, still running), so a duplicate or late delivery can never record a second result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_CLAIM = text(
    """
    WITH c AS (
        SELECT id, status AS prev_status, attempt AS prev_attempt, worker_id AS prev_worker
        FROM runs
        WHERE id = ANY(CAST(:ids AS text[]))
          AND (status = 'dispatched' OR (status = 'running' AND lease_until < now()))
        ORDER BY seq
        FOR UPDATE SKIP LOCKED
    ),
    u AS (
        UPDATE runs SET status = 'running', attempt = runs.attempt + 1, worker_id = :worker,
                        lease_until = now() + :lease * interval '1 second', started_at = now()
        FROM c WHERE runs.id = c.id
        RETURNING runs.id, runs.task_id, runs.task_type, runs.attempt, runs.scheduled_for,
                  runs.due_at, runs.started_at, c.prev_status, c.prev_attempt, c.prev_worker
    ),
    lost AS (
        INSERT INTO attempts (run_id, task_id, attempt, worker_id, outcome, error)
        SELECT id, task_id, prev_attempt, prev_worker, 'lost',
               'the worker stopped before finishing (lease expired)'
        FROM u WHERE prev_status = 'running'
    ),
    tu AS (
        UPDATE tasks SET status = 'running', updated_at = now()
        FROM u WHERE tasks.id = u.task_id AND tasks.status IN ('queued', 'held', 'scheduled')
    ),
    ev AS (
        -- a first start is in the attempt record; the event log notes only take-overs
        INSERT INTO task_events (task_id, run_id, kind, message)
        SELECT task_id, id, 'running',
               format('attempt %s lost (its worker stopped); attempt %s started on %s', prev_attempt, attempt, :worker)
        FROM u WHERE prev_status = 'running'
    )
    SELECT u.id, u.task_id, u.task_type, u.attempt, u.scheduled_for, u.due_at, u.started_at,
           u.prev_status, t.params, t.retry_policy, t.schedule IS NOT NULL AS scheduled,
           CASE WHEN t.task_type = 'http' THEN c.signing_secret END AS signing_secret
    FROM u JOIN tasks t ON t.id = u.task_id JOIN clients c ON c.id = t.client_id
    """
)


@dataclasses.dataclass(frozen=True)
class ClaimedRun:
    run_id: str
    task_id: str
    task_type: str
    attempt: int
    params: Any
    retry_policy: dict[str, Any] | None
    scheduled_for: dt.datetime
    started_at: dt.datetime
    #: the previous holder's lease had expired (that attempt was recorded as lost)
    reclaimed: bool
    #: its task has a schedule (it may have further fires)
    scheduled: bool = False
    #: the client's signing secret, for HTTP tasks
    signing_secret: str | None = None
    #: not to be executed before this (its fire time, or the time of its retry)
    due_at: dt.datetime | None = None


def claim_runs(conn: Connection, run_ids: list[str], worker: str, lease_s: int) -> list[ClaimedRun]:
    rows = conn.execute(_CLAIM, {"ids": run_ids, "worker": worker, "lease": lease_s}).all()
    return [
        ClaimedRun(
            run_id=r.id, task_id=r.task_id, task_type=r.task_type, attempt=r.attempt,
            params=r.params, retry_policy=r.retry_policy, scheduled_for=r.scheduled_for,
            started_at=r.started_at, due_at=r.due_at, reclaimed=r.prev_status == "running",
            scheduled=r.scheduled, signing_secret=r.signing_secret,
        )
        for r in rows
    ]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    run_id: str
    attempt: int
    #: 'succeeded', 'retry' (failed, another attempt at ``retry_at``) or 'failed' (final)
    decision: str
    result: Any = None
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    retry_at: dt.datetime | None = None
    http_status: int | None = None
    response_excerpt: str | None = None
    #: its task has a schedule: look for a further fire before calling it finished
    scheduled: bool = False


_RECORD = text(
    """
    WITH o AS (
        SELECT * FROM unnest(
            CAST(:run_ids AS text[]), CAST(:attempts AS int[]), CAST(:decisions AS text[]),
            CAST(:results AS text[]), CAST(:errors AS text[]), CAST(:started AS timestamptz[]),
            CAST(:finished AS timestamptz[]), CAST(:retry_at AS timestamptz[]),
            CAST(:http_status AS int[]), CAST(:excerpts AS text[]), CAST(:scheduled AS boolean[])
        ) AS o(run_id, attempt, decision, result, error, started_at, finished_at, retry_at,
               http_status, excerpt, scheduled)
    ),
    ru AS (
        UPDATE runs SET
            status = CASE o.decision WHEN 'succeeded' THEN 'succeeded'
                                     WHEN 'retry' THEN 'retry_wait' ELSE 'failed' END,
            result = CAST(o.result AS jsonb),
            error = o.error,
            lease_until = NULL,
            dispatched_at = CASE WHEN o.decision = 'retry' THEN NULL ELSE runs.dispatched_at END,
            due_at = COALESCE(o.retry_at, runs.due_at),
            finished_at = CASE WHEN o.decision = 'retry' THEN NULL ELSE o.finished_at END
        FROM o
        WHERE runs.id = o.run_id AND runs.status = 'running' AND runs.attempt = o.attempt
          AND runs.worker_id = :worker
        RETURNING runs.id, runs.task_id, runs.task_type, o.attempt, o.decision, o.result, o.error,
                  o.started_at, o.finished_at, o.retry_at, o.http_status, o.excerpt, o.scheduled
    ),
    at AS (
        INSERT INTO attempts (run_id, task_id, attempt, worker_id, outcome, started_at,
                              finished_at, duration_ms, error, http_status, response_excerpt)
        SELECT id, task_id, attempt, :worker,
               CASE decision WHEN 'succeeded' THEN 'succeeded' ELSE 'failed' END,
               started_at, finished_at,
               EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000, error, http_status, excerpt
        FROM ru
    ),
    tu AS (
        UPDATE tasks SET
            status = CASE WHEN tasks.status IN ('paused', 'cancelled') THEN tasks.status
                          WHEN ru.decision = 'retry' OR nx.id IS NOT NULL THEN 'scheduled'
                          WHEN ru.decision = 'succeeded' THEN 'completed' ELSE 'failed' END,
            result = CASE WHEN ru.decision = 'succeeded' THEN CAST(ru.result AS jsonb) ELSE tasks.result END,
            error = CASE WHEN ru.decision = 'succeeded' THEN NULL ELSE ru.error END,
            finished_at = CASE WHEN ru.decision = 'retry' OR nx.id IS NOT NULL THEN NULL ELSE ru.finished_at END,
            updated_at = now()
        FROM ru
        -- a periodic task with a further fire waiting stays scheduled
        LEFT JOIN LATERAL (
            SELECT r2.id FROM runs r2
            WHERE ru.scheduled AND r2.task_id = ru.task_id AND r2.id <> ru.id
              AND r2.status IN ('pending', 'dispatched')
            LIMIT 1
        ) nx ON true
        WHERE tasks.id = ru.task_id
        RETURNING tasks.id, tasks.params_key
    ),
    ev AS (
        INSERT INTO task_events (task_id, run_id, kind, message)
        SELECT task_id, id,
               CASE decision WHEN 'succeeded' THEN 'completed' WHEN 'retry' THEN 'scheduled' ELSE 'failed' END,
               CASE decision
                   WHEN 'succeeded' THEN format('attempt %s succeeded', attempt)
                   WHEN 'retry' THEN format('attempt %s failed: %s; retry at %s', attempt, error,
                                            to_char(retry_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                   ELSE format('attempt %s failed: %s; no retries left', attempt, error) END
        FROM ru
    ),
    ca AS (
        INSERT INTO cache (task_type, params_key, result)
        SELECT ru.task_type, tu.params_key, CAST(ru.result AS jsonb)
        FROM ru JOIN tu ON tu.id = ru.task_id
        WHERE ru.decision = 'succeeded' AND tu.params_key IS NOT NULL
        ON CONFLICT DO NOTHING
    )
    SELECT id FROM ru
    """
)


def record_outcomes(conn: Connection, worker: str, outcomes: list[RunOutcome]) -> set[str]:
    """Record attempts; returns the run ids actually recorded (others were no longer ours)."""
    if not outcomes:
        return set()
    rows = conn.execute(
        _RECORD,
        {
            "worker": worker,
            "run_ids": [o.run_id for o in outcomes],
            "attempts": [o.attempt for o in outcomes],
            "decisions": [o.decision for o in outcomes],
            "results": [None if o.result is None and o.decision != "succeeded" else json.dumps(o.result) for o in outcomes],
            "errors": [o.error for o in outcomes],
            "started": [o.started_at for o in outcomes],
            "finished": [o.finished_at for o in outcomes],
            "retry_at": [o.retry_at for o in outcomes],
            "http_status": [o.http_status for o in outcomes],
            "excerpts": [o.response_excerpt for o in outcomes],
            "scheduled": [o.scheduled for o in outcomes],
        },
    ).all()
    return {r.id for r in rows}


def extend_leases(conn: Connection, run_ids: list[str], worker: str, lease_s: int) -> set[str]:
    rows = conn.execute(
        text(
            """
            UPDATE runs SET lease_until = now() + :lease * interval '1 second'
            WHERE id = ANY(CAST(:ids AS text[])) AND status = 'running' AND worker_id = :worker
            RETURNING id
            """
        ),
        {"ids": run_ids, "worker": worker, "lease": lease_s},
    ).all()
    return {r.id for r in rows}


def drop_if_unwanted(conn: Connection, run_id: str, worker: str) -> bool:
    """Just before a run that waited for its time starts: if its task was cancelled or paused
    meanwhile, the run is cancelled instead (True) and must not execute."""
    row = conn.execute(
        text(
            """
            UPDATE runs SET status = 'cancelled', finished_at = now(), lease_until = NULL,
                            error = 'its task was ' || t.status || ' before it was due'
            FROM tasks t
            WHERE runs.id = :id AND runs.status = 'running' AND runs.worker_id = :worker
              AND t.id = runs.task_id AND t.status IN ('cancelled', 'paused')
            RETURNING runs.id
            """
        ),
        {"id": run_id, "worker": worker},
    ).one_or_none()
    return row is not None
