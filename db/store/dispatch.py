"""Moving due runs onto SQS, bounded by a window, and getting lost ones back.

Every dispatcher (the API's, any number of controllers) claims runs with a conditional update
under a per-type advisory lock, so no run is dispatched twice and the number of runs of a type
waiting on SQS never exceeds the window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.messages import RunRef

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('tasker-dispatch:' || :task_type))")

_CLAIM_TAIL = """
    u AS (
        UPDATE runs SET status = 'dispatched', dispatched_at = now()
        FROM cand WHERE runs.id = cand.id
        RETURNING runs.id, runs.attempt, runs.task_id, runs.seq, runs.due_at
    ),
    tu AS (
        UPDATE tasks SET status = 'queued', updated_at = now()
        FROM u WHERE tasks.id = u.task_id AND tasks.status IN ('scheduled', 'held')
        RETURNING tasks.id
    ),
    ev AS (
        INSERT INTO task_events (task_id, run_id, kind, message)
        SELECT u.task_id, u.id, 'queued', format('sent to its queue for attempt %s', u.attempt + 1)
        FROM u JOIN tu ON tu.id = u.task_id
    )
    SELECT u.id, u.attempt, u.task_id, u.due_at, t.schedule, t.run_count
    FROM u JOIN tasks t ON t.id = u.task_id ORDER BY u.seq
"""

_ROOM = """
    WITH room AS (
        SELECT GREATEST(:window - count(*), 0) AS n
        FROM runs WHERE task_type = :task_type AND status = 'dispatched'
    ),
    held AS (
        SELECT 1 FROM processes WHERE task_type = :task_type AND status = 'suspended'
    ),
"""

_CLAIM_DUE = text(
    _ROOM
    + """
    cand AS (
        SELECT id FROM runs
        WHERE task_type = :task_type AND status IN ('pending', 'retry_wait')
          AND due_at <= now() + :lead_s * interval '1 second'
          AND (status = 'retry_wait' OR due_at > created_at
               OR created_at < now() - :handoff_s * interval '1 second')
          AND NOT EXISTS (SELECT 1 FROM held)
        ORDER BY due_at, seq
        LIMIT LEAST((SELECT n FROM room), :limit)
        FOR UPDATE SKIP LOCKED
    ),
    """
    + _CLAIM_TAIL
)

_CLAIM_IDS = text(
    _ROOM
    + """
    cand AS (
        SELECT id FROM runs
        WHERE id = ANY(CAST(:ids AS text[])) AND status IN ('pending', 'retry_wait')
          AND NOT EXISTS (SELECT 1 FROM held)
        ORDER BY seq
        LIMIT LEAST((SELECT n FROM room), :limit)
        FOR UPDATE SKIP LOCKED
    ),
    """
    + _CLAIM_TAIL
)


@dataclasses.dataclass(frozen=True)
class Claimed:
    run_id: str
    #: attempts started so far (0: this is a new fire, not a retry)
    attempt: int
    task_id: str
    due_at: dt.datetime
    schedule: dict[str, Any] | None
    run_count: int

    @property
    def ref(self) -> RunRef:
        return RunRef(self.run_id, self.attempt + 1, self.due_at.timestamp())


def claim_for_dispatch(
    conn: Connection,
    task_type: str,
    *,
    window: int,
    limit: int,
    run_ids: list[str] | None = None,
    lead_s: float = 0.0,
    handoff_s: float = 0.0,
) -> list[Claimed]:
    """Mark due runs of ``task_type`` as dispatched (at most what fits in the window) and
    return them with the attempt number their delivery will execute.

    Without ``run_ids``, runs created less than ``handoff_s`` ago are left alone: the API
    process that accepted them is about to send them itself (two senders would only mean
    more, smaller messages).
    """
    conn.execute(_LOCK, {"task_type": task_type})
    params = {"task_type": task_type, "window": window, "limit": limit}
    if run_ids is not None:
        rows = conn.execute(_CLAIM_IDS, {**params, "ids": run_ids}).all()
    else:
        rows = conn.execute(_CLAIM_DUE, {**params, "lead_s": lead_s, "handoff_s": handoff_s}).all()
    return [Claimed(r.id, r.attempt, r.task_id, r.due_at, r.schedule, r.run_count) for r in rows]


def add_next_run(conn: Connection, task_id: str, task_type: str, run_id: str, due_at: dt.datetime) -> None:
    """The next fire of a periodic task, created when the previous one is dispatched."""
    conn.execute(
        text(
            """
            WITH r AS (
                INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
                VALUES (:run_id, :task_id, :task_type, 'pending', :due, :due)
            )
            UPDATE tasks SET run_count = run_count + 1, next_run_at = :due, updated_at = now()
            WHERE id = :task_id
            """
        ),
        {"run_id": run_id, "task_id": task_id, "task_type": task_type, "due": due_at},
    )


def no_next_run(conn: Connection, task_id: str, fire_sent: bool) -> None:
    """A periodic task reached its end or max_runs. If its last fire was skipped rather than
    sent, nothing will record it: the task completes here."""
    conn.execute(
        text(
            """
            UPDATE tasks SET next_run_at = NULL,
                status = CASE WHEN CAST(:sent AS boolean) THEN status ELSE 'completed' END,
                finished_at = CASE WHEN CAST(:sent AS boolean) THEN finished_at ELSE now() END
            WHERE id = :id
            """
        ),
        {"id": task_id, "sent": fire_sent},
    )


def skip_run(conn: Connection, run_id: str, task_id: str, reason: str, final: bool) -> None:
    """A fire missed while the service was down, with ``misfire: skip``."""
    conn.execute(
        text(
            """
            WITH r AS (
                UPDATE runs SET status = 'cancelled', dispatched_at = NULL, error = :reason,
                                finished_at = now()
                WHERE id = :run_id
            ),
            t AS (
                UPDATE tasks SET status = 'failed', error = :reason, finished_at = now(),
                                 updated_at = now(), next_run_at = NULL
                WHERE id = :task_id AND CAST(:final AS boolean)
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            VALUES (:task_id, :run_id, CASE WHEN CAST(:final AS boolean) THEN 'failed' ELSE 'skipped' END, :reason)
            """
        ),
        {"run_id": run_id, "task_id": task_id, "reason": reason, "final": final},
    )


def revert_dispatch(conn: Connection, run_ids: list[str]) -> int:
    """SQS did not take them: back to pending, for the controller to send later."""
    result = conn.execute(
        text(
            """
            UPDATE runs SET status = 'pending', dispatched_at = NULL
            WHERE id = ANY(CAST(:ids AS text[])) AND status = 'dispatched'
            """
        ),
        {"ids": run_ids},
    )
    return int(result.rowcount)


def types_with_due_work(
    conn: Connection, task_types: list[str], lead_s: float = 0.0, handoff_s: float = 0.0
) -> list[str]:
    rows = conn.execute(
        text(
            """
            SELECT tt AS task_type FROM unnest(CAST(:types AS text[])) AS tt
            WHERE EXISTS (
                SELECT 1 FROM runs r
                WHERE r.task_type = tt AND r.status IN ('pending', 'retry_wait')
                  AND r.due_at <= now() + :lead_s * interval '1 second'
                  AND (r.status = 'retry_wait' OR r.due_at > r.created_at
                       OR r.created_at < now() - :handoff_s * interval '1 second')
            )
            AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.task_type = tt AND p.status = 'suspended')
            """
        ),
        {"types": task_types, "lead_s": lead_s, "handoff_s": handoff_s},
    ).all()
    return [r.task_type for r in rows]


def stale_dispatched_count(conn: Connection, task_type: str, older_than_s: float) -> int:
    return int(
        conn.execute(
            text(
                """
                SELECT count(*) FROM runs
                WHERE task_type = :task_type AND status = 'dispatched'
                  AND dispatched_at < now() - :s * interval '1 second'
                """
            ),
            {"task_type": task_type, "s": older_than_s},
        ).scalar_one()
    )


def reset_stale_dispatched(conn: Connection, task_type: str, older_than_s: float) -> int:
    """Dispatched runs whose message is gone (the queue is empty): send them again."""
    result = conn.execute(
        text(
            """
            WITH u AS (
                UPDATE runs SET status = 'pending', dispatched_at = NULL
                WHERE task_type = :task_type AND status = 'dispatched'
                  AND dispatched_at < now() - :s * interval '1 second'
                RETURNING id, task_id
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            SELECT task_id, id, 'queued', 'its message was lost on the way; sending it again' FROM u
            """
        ),
        {"task_type": task_type, "s": older_than_s},
    )
    return int(result.rowcount)


def recover_expired_leases(conn: Connection, grace_s: float, default_retries: int) -> int:
    """Runs whose tasker stopped mid-task and whose message did not come back: record the lost
    attempt and make the run due again, or fail it when its attempts are used up."""
    result = conn.execute(
        text(
            """
            WITH x AS (
                SELECT r.id, r.task_id, r.attempt, r.worker_id,
                       r.attempt >= COALESCE(CAST(t.retry_policy ->> 'retries' AS int), :retries) + 1 AS exhausted
                FROM runs r JOIN tasks t ON t.id = r.task_id
                WHERE r.status = 'running' AND r.lease_until < now() - :grace * interval '1 second'
                FOR UPDATE OF r SKIP LOCKED
            ),
            u AS (
                UPDATE runs SET
                    status = CASE WHEN x.exhausted THEN 'failed' ELSE 'pending' END,
                    due_at = now(), lease_until = NULL, dispatched_at = NULL,
                    finished_at = CASE WHEN x.exhausted THEN now() END,
                    error = CASE WHEN x.exhausted THEN 'gave up: the worker stopped mid-task on the last attempt' END
                FROM x WHERE runs.id = x.id
                RETURNING runs.id, runs.task_id, x.attempt, x.worker_id, x.exhausted
            ),
            a AS (
                INSERT INTO attempts (run_id, task_id, attempt, worker_id, outcome, error)
                SELECT id, task_id, attempt, worker_id, 'lost',
                       'the worker stopped before finishing (lease expired)'
                FROM u
            ),
            tu AS (
                UPDATE tasks SET
                    status = CASE WHEN u.exhausted THEN 'failed' ELSE 'queued' END,
                    error = CASE WHEN u.exhausted THEN 'gave up: the worker stopped mid-task on the last attempt' ELSE tasks.error END,
                    finished_at = CASE WHEN u.exhausted THEN now() END,
                    updated_at = now()
                FROM u WHERE tasks.id = u.task_id AND tasks.status = 'running'
            )
            INSERT INTO task_events (task_id, run_id, kind, message)
            SELECT task_id, id, CASE WHEN exhausted THEN 'failed' ELSE 'queued' END,
                   format('attempt %s lost: its worker stopped (lease expired)', attempt)
                   || CASE WHEN exhausted THEN '; no attempts left' ELSE '; running it again' END
            FROM u
            """
        ),
        {"grace": grace_s, "retries": default_retries},
    )
    return int(result.rowcount)
