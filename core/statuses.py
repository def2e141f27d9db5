"""Every state machine's vocabulary, defined once.

Each enum is mirrored by a CHECK constraint in PostgreSQL (see ``db/models.py``).
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """What a client sees for a request or task."""

    #: waiting for its time (a future run, a retry wait, or between periodic runs)
    SCHEDULED = "scheduled"
    #: due and accepted for dispatch; on its way to (or waiting in) its SQS queue
    QUEUED = "queued"
    #: due, but its task type is suspended by an operator; released by ``active``
    HELD = "held"
    #: a tasker has claimed it and is executing it
    RUNNING = "running"
    #: paused by its client; never fires until resumed
    PAUSED = "paused"
    #: finished successfully (or served from the cache)
    COMPLETED = "completed"
    #: finished without success after its retries
    FAILED = "failed"
    #: cancelled by its client; never fires afterwards
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    """One execution of a task."""

    #: stored, due at ``due_at``, not yet on SQS
    PENDING = "pending"
    #: a message naming it was sent to SQS
    DISPATCHED = "dispatched"
    #: claimed by a tasker under a lease
    RUNNING = "running"
    #: recorded as a success
    SUCCEEDED = "succeeded"
    #: recorded as a final failure
    FAILED = "failed"
    #: an attempt failed and another one is due at ``due_at``
    RETRY_WAIT = "retry_wait"
    #: its task was cancelled before it ran
    CANCELLED = "cancelled"


class ProcessStatus(StrEnum):
    """The health of one task type."""

    #: working
    ACTIVE = "active"
    #: a handler raised an internal error; cleared by the next success
    ERROR = "error"
    #: sending to or receiving from its SQS queue failed; cleared when SQS answers
    QUEUE = "queue"
    #: an operator suspended it: requests are held, nothing is dispatched
    SUSPENDED = "suspended"


class AttemptOutcome(StrEnum):
    #: the handler returned a result
    SUCCEEDED = "succeeded"
    #: the handler failed; the run may be retried
    FAILED = "failed"
    #: the worker stopped (or lost its lease) before recording anything
    LOST = "lost"


class WorkflowStatus(StrEnum):
    """A workflow: a sequence of steps with a condition check and a fallback."""

    #: waiting for its first step (initial_delay or run_at)
    SCHEDULED = "scheduled"
    #: a step, a condition check or the fallback is running or due
    RUNNING = "running"
    #: every step ran and every condition check passed
    SUCCESS = "success"
    #: a step failed or the condition check never passed; the fallback ran (if any)
    FAILED = "failed"
    #: cancelled by its client; nothing further starts
    CANCELLED = "cancelled"


class WorkflowPhase(StrEnum):
    """What a running workflow is doing at its position."""

    #: running step ``position`` (or waiting to start it)
    STEP = "step"
    #: checking the condition after step ``position``
    CHECK = "check"
    #: running the fallback
    FALLBACK = "fallback"
    #: finished
    DONE = "done"


WORKFLOW_STATES = [s.value for s in WorkflowStatus]
ACTIVE_WORKFLOW_STATUSES = (WorkflowStatus.SCHEDULED, WorkflowStatus.RUNNING)

#: Task statuses a client can filter on, plus ``all``.
TASK_STATES = [s.value for s in TaskStatus]
FINAL_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
#: Pending or scheduled work: what a client's quota (``TASKER_QUOTA_ACTIVE_TASKS``) counts.
ACTIVE_TASK_STATUSES = tuple(s for s in TaskStatus if s not in FINAL_TASK_STATUSES)
