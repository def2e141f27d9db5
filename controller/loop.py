"""The controller. Any number may run: every change it makes is a conditional update or a
claim under ``SKIP LOCKED`` and a per-type advisory lock, so two controllers never dispatch
the same run twice.

Each pass (every ``TASKER_CONTROLLER_INTERVAL`` seconds):

* dispatch due runs that no one sent yet: held work released by ``active``, retries whose
  time has come, runs the API could not send (SQS down, window full);
* move workflows whose wait is over or whose current step, check or fallback ended
  (``controller/workflows.py``);
* every few seconds: recover runs whose tasker stopped mid-task and whose message did not
  come back, re-send dispatched runs whose message was lost (their queue is empty), check
  that SQS answers again for types in ``queue`` status, and write a heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy.engine import Engine

from controller import workflows
from core import catalogue
from core.dispatch import Dispatcher
from core.errors import QueueUnavailable, StoreUnavailable
from core.logs import log_event
from core.settings import Settings
from core.sqs import Transport
from core.statuses import ProcessStatus
from db.engine import transaction
from db.store import dispatch as store
from db.store import processes, workers

log = logging.getLogger("tasker.controller")


class Controller:
    def __init__(self, settings: Settings, engine: Engine, transport: Transport, controller_id: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.transport = transport
        self.id = controller_id or f"controller@{socket.gethostname()}:{os.getpid()}"
        self.dispatcher = Dispatcher(engine, transport, settings, source=self.id)
        self.stopping = threading.Event()
        self.types = catalogue.names()
        self._last_maintenance = 0.0
        self.maintenance_every = 2.0
        #: task type -> monotonic time before which we do not try SQS again (it was down)
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        #: runs younger than this are the accepting API's to send (see claim_for_dispatch)
        self.handoff_s = max(1.0, 5 * settings.dispatch_linger_ms / 1000)

    def prepare(self) -> None:
        with transaction(self.engine) as conn:
            processes.ensure_processes(conn, self.types)
        try:
            self.transport.ensure_queues(self.types)
        except QueueUnavailable as exc:
            log_event(log, logging.WARNING, f"SQS unreachable at start; will keep trying: {exc}", action="start")

    def run_forever(self) -> None:
        self.prepare()
        log_event(log, logging.INFO, "controller started", action="start", worker=self.id)
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except StoreUnavailable as exc:
                log_event(log, logging.WARNING, f"database unavailable: {exc}", action="tick", worker=self.id)
                self.stopping.wait(1.0)
            except Exception:
                log.exception("controller pass failed", extra={"worker": self.id})
                self.stopping.wait(1.0)
            self.stopping.wait(max(0.0, self.settings.controller_interval - (time.monotonic() - started)))
        try:
            with transaction(self.engine) as conn:
                workers.remove(conn, self.id)
        except StoreUnavailable:
            pass
        log_event(log, logging.INFO, "controller stopped", action="stop", worker=self.id)

    def tick(self) -> None:
        if time.monotonic() - self._last_maintenance >= self.maintenance_every:
            self._last_maintenance = time.monotonic()
            self.maintenance()
        self.dispatch_due()
        workflows.advance(self.engine, self.dispatcher)

    def dispatch_due(self) -> int:
        with transaction(self.engine) as conn:
            due = store.types_with_due_work(conn, self.types, lead_s=self.settings.lead_s,
                                            handoff_s=self.handoff_s)
        sent = 0
        now = time.monotonic()
        for task_type in due:
            if self._retry_at.get(task_type, 0.0) > now:
                continue
            try:
                result = self.dispatcher.dispatch(task_type, lead_s=self.settings.lead_s,
                                                  handoff_s=self.handoff_s)
                self._retry_at.pop(task_type, None)
                self._failures.pop(task_type, None)
                sent += result.sent
                if result.sent:
                    log_event(log, logging.INFO, "dispatched", action="dispatch", task_type=task_type,
                              count=result.sent, worker=self.id)
            except QueueUnavailable as exc:
                failures = self._failures.get(task_type, 0) + 1
                self._failures[task_type] = failures
                delay = min(10.0, 0.5 * 2 ** (failures - 1))
                self._retry_at[task_type] = time.monotonic() + delay
                log_event(log, logging.WARNING,
                          f"SQS unreachable; work waits in PostgreSQL, next try in {delay:.1f}s: {exc}",
                          action="dispatch", task_type=task_type, worker=self.id)
        return sent

    def maintenance(self) -> None:
        with transaction(self.engine) as conn:
            workers.heartbeat(conn, self.id, "controller", [], socket.gethostname(), os.getpid())
            recovered = store.recover_expired_leases(
                conn, grace_s=float(self.settings.lease_seconds), default_retries=self.settings.retries
            )
            statuses = {r.task_type: r.status for r in processes.list_processes(conn, self.types, 60)}
            workers.prune(conn, 24 * 3600)
        if recovered:
            log_event(log, logging.WARNING, "recovered runs whose worker stopped", action="recover",
                      count=recovered, worker=self.id)
        for task_type in self.types:
            self._check_queue(task_type, statuses.get(task_type))

    def _check_queue(self, task_type: str, status: str | None) -> None:
        with transaction(self.engine) as conn:
            stale = store.stale_dispatched_count(conn, task_type, self.settings.redispatch_after)
        if not stale and status != ProcessStatus.QUEUE:
            return
        try:
            depth = self.transport.depth(task_type)
        except QueueUnavailable as exc:
            with transaction(self.engine) as conn:
                processes.mark(conn, task_type, ProcessStatus.QUEUE, str(exc),
                               only_from=(ProcessStatus.ACTIVE, ProcessStatus.ERROR))
            return
        with transaction(self.engine) as conn:
            if status == ProcessStatus.QUEUE:
                processes.mark(conn, task_type, ProcessStatus.ACTIVE, "SQS answers again",
                               only_from=(ProcessStatus.QUEUE,))
                self.dispatcher.queue_down.discard(task_type)
            if stale and depth["visible"] + depth["in_flight"] + depth["delayed"] == 0:
                count = store.reset_stale_dispatched(conn, task_type, self.settings.redispatch_after)
                if count:
                    log_event(log, logging.WARNING, "messages were lost; sending their runs again",
                              action="redispatch", task_type=task_type, count=count, worker=self.id)
