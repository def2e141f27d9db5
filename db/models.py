"""The schema. Alembic migrations under ``db/migrations`` must produce exactly this (a test
compares them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.statuses import (
    ACTIVE_TASK_STATUSES,
    ACTIVE_WORKFLOW_STATUSES,
    AttemptOutcome,
    ProcessStatus,
    RunStatus,
    TaskStatus,
    WorkflowPhase,
    WorkflowStatus,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


NOW = text("now()")
TZ = DateTime(timezone=True)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), server_default="client")
    #: keys the HMAC of every HTTP call made for this client (core.signing)
    signing_secret: Mapped[str] = mapped_column(
        # 64 hex characters from two random UUIDs, written as PostgreSQL renders it
        Text, server_default=text("replace(((gen_random_uuid())::text || (gen_random_uuid())::text), '-'::text, ''::text)")
    )
    #: public part of its API key (finds the row); the key itself is stored only as a hash
    key_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    #: per-client limits (``tasker clients limits``); NULL: the TASKER_* setting applies
    rate_limit_per_s: Mapped[float | None] = mapped_column(Double)
    rate_limit_burst: Mapped[int | None] = mapped_column(Integer)
    quota_active_tasks: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("role IN ('client', 'admin')", name="role"),
        CheckConstraint("rate_limit_per_s >= 0 AND rate_limit_burst >= 1 AND quota_active_tasks >= 0", name="limits"),
    )


class RateBucket(Base):
    """A client's request-rate token bucket, shared by every API process (``api/limits.py``)."""

    __tablename__ = "rate_buckets"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    #: tokens left at ``updated_at``; refilled at the client's rate up to its burst
    tokens: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[dt.datetime] = mapped_column(TZ)
    #: tokens the last call took (RETURNING sees only the new row, so the statement records it)
    taken: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: arrival order; keyset pagination and release order of held work
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    task_type: Mapped[str] = mapped_column(String(100))
    params: Mapped[Any] = mapped_column(JSONB)
    #: canonical params of a deterministic task (the cache key), else NULL
    params_key: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    cached: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    result: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    retry_policy: Mapped[Any | None] = mapped_column(JSONB)
    #: when it runs (core.schedule.Schedule.to_json); NULL: now, once
    schedule: Mapped[Any | None] = mapped_column(JSONB)
    #: fires created so far (a periodic task's max_runs counts these)
    run_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: the due time of its next fire, while it has one
    next_run_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    finished_at: Mapped[dt.datetime | None] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(_in("status", TaskStatus), name="status"),
        Index("ix_tasks_client_seq", "client_id", "seq"),
        # newest-first listing of everyone's tasks (GET /tasks, /jobs)
        Index("ix_tasks_seq", "seq"),
        # a client's pending and scheduled tasks, counted for its quota (api/limits.py). Its
        # predicate names status, so a status update is no longer HOT (PostgreSQL treats
        # predicate columns as indexed); the price of an exact count that does not read a
        # client's finished tasks
        Index("ix_tasks_client_active", "client_id", postgresql_where=text(_in("status", ACTIVE_TASK_STATUSES))),
        # room on each page so the status updates of a task are HOT (no new index entries)
        {"postgresql_with": {"fillfactor": "70"}},
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    task_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    #: when it may be dispatched (its schedule, or its next retry)
    due_at: Mapped[dt.datetime] = mapped_column(TZ)
    scheduled_for: Mapped[dt.datetime] = mapped_column(TZ)
    #: number of the last attempt started (0: none yet)
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[dt.datetime | None] = mapped_column(TZ)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    started_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    finished_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    result: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (
        CheckConstraint(_in("status", RunStatus), name="status"),
        # what the dispatchers look for: due work per type, in arrival order
        Index(
            "ix_runs_due",
            "task_type",
            "due_at",
            "seq",
            postgresql_where=text("status IN ('pending', 'retry_wait')"),
        ),
        Index("ix_runs_dispatched", "task_type", "dispatched_at", postgresql_where=text("status = 'dispatched'")),
        Index("ix_runs_running", "task_type", "lease_until", postgresql_where=text("status = 'running'")),
    )


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign keys on the two append-only logs: rows are only ever written by the store in
    # the same statement that changes their run, and an FK check per appended row (an index
    # probe plus a share lock on the task row) was a measurable part of the database's CPU.
    run_id: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str] = mapped_column(String(32), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    finished_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    duration_ms: Mapped[float | None] = mapped_column()
    http_status: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint(_in("outcome", AttemptOutcome), name="outcome"),)


class TaskEvent(Base):
    """Append-only history of a task: what ``results`` endpoints return."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(32), index=True)  # no FK: see Attempt
    run_id: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)


class CacheEntry(Base):
    __tablename__ = "cache"

    task_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    params_key: Mapped[str] = mapped_column(Text, primary_key=True)
    result: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)


class Process(Base):
    """One row per task type: its status, why, and since when."""

    __tablename__ = "processes"

    task_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    reason: Mapped[str | None] = mapped_column(Text)
    since: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (CheckConstraint(_in("status", ProcessStatus), name="status"),)


class Worker(Base):
    """Heartbeats of taskers, controllers and API processes."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    queues: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (CheckConstraint("kind IN ('tasker', 'controller', 'api')", name="kind"),)


class Workflow(Base):
    """A sequence of tasks with a condition check and a fallback, advanced by the controller
    (``controller/workflows.py``). Its state is here, so a controller restart resumes it."""

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    status: Mapped[str] = mapped_column(String(20))
    phase: Mapped[str] = mapped_column(String(20))
    #: the normalised request (core/workflow.py)
    spec: Mapped[Any] = mapped_column(JSONB)
    #: index of the current step
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: condition checks done after the current step
    checks: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: when the next step, check or fallback starts (NULL while one runs)
    next_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    #: the task of the step, check or fallback that runs now
    current_task_id: Mapped[str | None] = mapped_column(String(32))
    #: result of the last step that succeeded (what ``body_from: previous`` sends)
    last_result: Mapped[Any | None] = mapped_column(JSONB)
    #: what happened, in words (why it failed, where it was cancelled)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)
    finished_at: Mapped[dt.datetime | None] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(_in("status", WorkflowStatus), name="status"),
        CheckConstraint(_in("phase", WorkflowPhase), name="phase"),
        Index("ix_workflows_client_seq", "client_id", "seq"),
        Index("ix_workflows_seq", "seq"),
        # what the controller looks at: workflows not finished
        Index("ix_workflows_active", "next_at", postgresql_where=text(_in("status", ACTIVE_WORKFLOW_STATUSES))),
    )


class WorkflowItem(Base):
    """One step, condition check or fallback of a workflow, and the task that ran it. The
    unique key is the guarantee that nothing runs twice for the same position."""

    __tablename__ = "workflow_items"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    #: the check's number after its step (0 for steps and the fallback)
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    task_id: Mapped[str] = mapped_column(String(32))
    #: succeeded / failed for a step or the fallback, passed / not_passed for a check
    outcome: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (
        CheckConstraint("kind IN ('step', 'check', 'fallback')", name="kind"),
        Index("uq_workflow_items_position", "workflow_id", "kind", "position", "attempt", unique=True),
    )
