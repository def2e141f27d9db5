"""Dispatching: claim due runs in PostgreSQL, then send messages naming them to SQS.

Used by the API (for the runs it just accepted) and by the controller (for everything else:
held work released, retries, runs the API could not send). Claim-then-send means a crash
between the two leaves a run marked dispatched without a message; the controller notices
(the queue is empty while the run still waits) and sends it again. Two dispatchers never
claim the same run.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy.engine import Connection, Engine

from core.clock import iso, utcnow
from core.errors import QueueUnavailable
from core.ids import new_id
from core.logs import log_event
from core.messages import RunRef
from core.schedule import Schedule
from core.settings import Settings
from core.sqs import Transport
from core.statuses import ProcessStatus
from db.engine import transaction
from db.store import dispatch as store
from db.store import processes

log = logging.getLogger("tasker.dispatch")


@dataclasses.dataclass
class DispatchResult:
    sent: int = 0
    #: SQS did not take them; they wait in PostgreSQL as pending
    deferred: int = 0


class Dispatcher:
    def __init__(self, engine: Engine, transport: Transport, settings: Settings, source: str) -> None:
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.source = source
        #: task types whose last send failed (so their process status is 'queue')
        self.queue_down: set[str] = set()

    def dispatch(
        self, task_type: str, run_ids: list[str] | None = None, lead_s: float = 0.0, handoff_s: float = 0.0
    ) -> DispatchResult:
        """Send due runs of ``task_type`` (only ``run_ids`` if given) until none is left or the
        window is full. Raises QueueUnavailable after putting the unsent runs back."""
        result = DispatchResult()
        per_round = self.settings.runs_per_message * 10
        while True:
            with transaction(self.engine) as conn:
                claimed = store.claim_for_dispatch(
                    conn, task_type, window=self.settings.queue_window, limit=per_round,
                    run_ids=run_ids, lead_s=lead_s, handoff_s=handoff_s,
                )
                refs = self._follow_schedules(conn, task_type, claimed)
            if not claimed:
                return result
            if not refs:
                continue
            failed = self._send(task_type, refs)
            result.sent += len(refs) - len(failed)
            if failed:
                result.deferred += len(failed)
                return result
            if len(claimed) < per_round:
                return result

    def _follow_schedules(self, conn: Connection, task_type: str, claimed: list[store.Claimed]) -> list[RunRef]:
        """In the claim's transaction: create the next fire of each periodic task whose fire is
        being dispatched, and apply the misfire policy to fires missed during downtime. Two
        dispatchers never claim the same run, so each next fire is created exactly once."""
        refs: list[RunRef] = []
        now = utcnow()
        for c in claimed:
            if not c.schedule or c.attempt > 0:  # not scheduled, or a retry of an earlier fire
                refs.append(c.ref)
                continue
            sched = Schedule.from_json(c.schedule)
            due = sched.after_downtime(c.due_at, now, self.settings.misfire_grace_s, c.run_count)
            missed = due is None or due != c.due_at
            sent = not (due is None or (missed and due > now))
            if sent:
                refs.append(c.ref)
            else:
                reason = f"skipped: it was due at {iso(c.due_at)} while Tasker was not running (misfire: skip)"
                store.skip_run(conn, c.run_id, c.task_id, reason, final=not sched.periodic)
            if sched.periodic:
                nxt = sched.next_fire(now if missed else c.due_at, c.run_count)
                if missed and due is not None and due > now:
                    nxt = due  # skip: the next regular fire after now
                if nxt is not None:
                    store.add_next_run(conn, c.task_id, task_type, new_id(), nxt)
                else:
                    store.no_next_run(conn, c.task_id, fire_sent=sent)
        return refs

    def _send(self, task_type: str, refs: list[RunRef]) -> list[RunRef]:
        try:
            failed = self.transport.send_runs(task_type, refs)
        except QueueUnavailable as exc:
            self._revert(task_type, refs)
            self._mark_down(task_type, str(exc))
            raise
        if failed:
            self._revert(task_type, failed)
            self._mark_down(task_type, f"SQS rejected {len(failed)} of {len(refs)} runs")
        else:
            self._mark_up(task_type)
        log_event(log, logging.DEBUG, "dispatched", action="dispatch", task_type=task_type,
                  count=len(refs) - len(failed), worker=self.source)
        return failed

    def _revert(self, task_type: str, refs: list[RunRef]) -> None:
        with transaction(self.engine) as conn:
            store.revert_dispatch(conn, [r.run_id for r in refs])
        log_event(log, logging.WARNING, "could not send; runs wait in PostgreSQL", action="defer",
                  task_type=task_type, count=len(refs), worker=self.source)

    def _mark_down(self, task_type: str, reason: str) -> None:
        self.queue_down.add(task_type)
        try:
            with transaction(self.engine) as conn:
                processes.mark(conn, task_type, ProcessStatus.QUEUE, reason,
                               only_from=(ProcessStatus.ACTIVE, ProcessStatus.ERROR))
        except Exception:  # the database may be down too; the status catches up later
            log.exception("could not record queue status", extra={"task_type": task_type})

    def _mark_up(self, task_type: str) -> None:
        if task_type not in self.queue_down:
            return
        self.queue_down.discard(task_type)
        with transaction(self.engine) as conn:
            processes.mark(conn, task_type, ProcessStatus.ACTIVE, "SQS answers again",
                           only_from=(ProcessStatus.QUEUE,))
