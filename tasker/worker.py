"""A tasker process: receive -> claim -> execute -> record -> acknowledge.

Threads: one receiver per queue (long poll), a pool that executes handlers, one recorder that
writes outcomes in batches and then deletes the messages whose runs are all recorded, and a
heartbeat that extends leases and visibility of long runs. A message is deleted only after
every run it names is recorded (or found already finished), so a tasker killed at any point
loses nothing: the message comes back after the visibility timeout and the expired lease lets
another tasker take the run over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.errors import QueueUnavailable, StoreUnavailable
from core.logs import log_event
from core.messages import BadMessage, decode
from core.retry import Outcome, RetryPolicy, decide_retry
from core.settings import Settings
from core.sqs import Received, Transport
from core.statuses import ProcessStatus
from db.engine import transaction
from db.store import processes, workers
from db.store import runs as store
from tasker.aio import AsyncRunner
from tasker.execute import Executed, Handlers, execute, execute_async
from tasker.tasks import http as http_task

log = logging.getLogger("tasker.worker")


def make_worker_id(kind: str = "tasker") -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"


@dataclasses.dataclass
class _Message:
    task_type: str
    receipt: str
    pending: set[str]
    received_at: float


class Worker:
    def __init__(
        self, settings: Settings, engine: Engine, transport: Transport, queues: list[str],
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.transport = transport
        self.queues = queues
        self.id = worker_id or make_worker_id()
        self.handlers = Handlers()
        self.default_policy = RetryPolicy(settings.retries, settings.retry_base_s, settings.retry_max_s)
        self.pool = ThreadPoolExecutor(settings.worker_concurrency, thread_name_prefix="exec")
        self.aio = AsyncRunner(settings.http_concurrency)
        http_task.configure(settings.http_excerpt_bytes, settings.http_allow)
        self.results: queue.Queue[Executed] = queue.Queue()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        #: run id -> messages naming it that wait for its outcome
        self._waiting: dict[str, list[_Message]] = {}
        self._in_flight = 0
        self._queue_down: set[str] = set()
        self.max_in_flight = max(settings.worker_concurrency * 4, settings.runs_per_message * 10)
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.transport.ensure_queues(self.queues)
        self._heartbeat_row()
        for task_type in self.queues:
            self._spawn(f"receive-{task_type}", self._receive_loop, task_type)
        self._spawn("recorder", self._record_loop)
        self._spawn("heartbeat", self._heartbeat_loop)
        log_event(log, logging.INFO, f"tasker started; queues: {', '.join(self.queues)}",
                  action="start", worker=self.id)

    def _spawn(self, name: str, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop receiving, finish and record what is in flight, then leave."""
        self.stopping.set()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0 and self.results.empty():
                    break
            time.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.aio.close()
        for thread in self._threads:
            if thread.name == "recorder":
                thread.join(timeout=5)
        try:
            with transaction(self.engine) as conn:
                workers.remove(conn, self.id)
        except StoreUnavailable:
            pass
        log_event(log, logging.INFO, "tasker stopped", action="stop", worker=self.id)

    def run_forever(self) -> None:
        self.start()
        while not self.stopping.wait(1.0):
            pass

    # --- receiving ------------------------------------------------------------------------

    def _receive_loop(self, task_type: str) -> None:
        backoff = 0.5
        last_start = 0.0
        got_last = False
        while not self.stopping.is_set():
            with self._lock:
                busy = self._in_flight >= self.max_in_flight
            if busy:
                time.sleep(0.01)
                continue
            if got_last:  # under load, let messages accumulate so each receive takes several
                pause = last_start + self.settings.receive_linger_ms / 1000 - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            last_start = time.monotonic()
            try:
                received = self.transport.receive(task_type)
            except QueueUnavailable as exc:
                self._mark_queue_down(task_type, str(exc))
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            self._mark_queue_up(task_type)
            got_last = bool(received)
            if not received:
                continue
            if self.stopping.is_set():  # hand them back at once
                self._safe_extend(task_type, [m.receipt for m in received], 0)
                return
            self._handle(task_type, received)

    def _handle(self, task_type: str, received: list[Received]) -> None:
        messages: list[_Message] = []
        run_ids: list[str] = []
        for item in received:
            try:
                decoded = decode(item.body)
            except BadMessage as exc:
                log_event(log, logging.ERROR, f"not a Tasker message, left for the dead-letter queue: {exc}",
                          action="bad_message", task_type=task_type, worker=self.id)
                continue
            ids = [r.run_id for r in decoded.runs]
            messages.append(_Message(task_type, item.receipt, set(ids), time.monotonic()))
            run_ids.extend(ids)
        if not messages:
            return
        try:
            with transaction(self.engine) as conn:
                claimed = store.claim_runs(conn, list(dict.fromkeys(run_ids)), self.id, self.settings.lease_seconds)
        except StoreUnavailable as exc:
            log_event(log, logging.WARNING, f"cannot claim, database unavailable; messages come back soon: {exc}",
                      action="claim_failed", task_type=task_type, worker=self.id)
            self._safe_extend(task_type, [m.receipt for m in messages], min(5, self.settings.lease_seconds))
            time.sleep(1.0)
            return
        claimed_ids = {c.run_id for c in claimed}
        done_receipts: list[str] = []
        with self._lock:
            for message in messages:
                # runs we did not claim are finished, cancelled or held by a live lease elsewhere
                message.pending &= claimed_ids
                if not message.pending:
                    done_receipts.append(message.receipt)
                for run_id in message.pending:
                    self._waiting.setdefault(run_id, []).append(message)
            self._in_flight += len(claimed)
        for run in claimed:
            if run.reclaimed:
                log_event(log, logging.WARNING, "took over a run whose worker stopped", action="reclaim",
                          task_id=run.task_id, run_id=run.run_id, attempt=run.attempt, worker=self.id)
            self._start(run)
        if done_receipts:
            self._ack(task_type, done_receipts)

    def _start(self, run: store.ClaimedRun) -> None:
        """Runs sent ahead of their time wait on the event loop until they are due. Shortly
        before, the tasker checks that their task was not cancelled or paused meanwhile; at the
        due instant an async handler starts right on the loop (no thread hop: precision)."""
        due = run.due_at or run.scheduled_for
        delay = (due - utcnow()).total_seconds()
        if delay <= 0.0005:
            self._launch(run)
            return
        loop = self.aio.loop
        check_in = max(0.0, delay - 0.05)
        loop.call_soon_threadsafe(lambda: loop.call_later(check_in, self.pool.submit, self._check_held, run))

    def _check_held(self, run: store.ClaimedRun) -> None:
        try:
            with transaction(self.engine) as conn:
                dropped = store.drop_if_unwanted(conn, run.run_id, self.id)
        except StoreUnavailable:
            dropped = False  # run it: recording is conditional anyway
        if dropped:
            log_event(log, logging.INFO, "not run: its task was cancelled or paused while it waited",
                      action="dropped", task_id=run.task_id, run_id=run.run_id, worker=self.id)
            self._finish([run.run_id])
            return
        loop = self.aio.loop
        due = run.due_at or run.scheduled_for

        def at_due() -> None:
            if self._is_async(run):
                self.aio.start_here(lambda: execute_async(self.handlers, run), self.results.put)
            else:
                self.pool.submit(self._execute, run)

        def schedule() -> None:
            loop.call_at(loop.time() + (due - utcnow()).total_seconds(), at_due)

        loop.call_soon_threadsafe(schedule)

    def _is_async(self, run: store.ClaimedRun) -> bool:
        try:
            return self.handlers.get(run.task_type).is_async
        except Exception:  # unknown or broken handler: execute() records why
            return False

    def _launch(self, run: store.ClaimedRun) -> None:
        """Async handlers (HTTP) go to the event loop, hundreds at once; others to the pool."""
        if self._is_async(run):
            self.aio.submit(lambda: execute_async(self.handlers, run), self.results.put)
        else:
            self.pool.submit(self._execute, run)

    def _execute(self, run: store.ClaimedRun) -> None:
        self.results.put(execute(self.handlers, run))

    # --- recording ------------------------------------------------------------------------

    def _record_loop(self) -> None:
        while True:
            try:
                first = self.results.get(timeout=0.2)
            except queue.Empty:
                if self.stopping.is_set():
                    with self._lock:
                        if self._in_flight == 0:
                            return
                continue
            batch = [first]
            while len(batch) < 1000:
                try:
                    batch.append(self.results.get_nowait())
                except queue.Empty:
                    break
            self._record(batch)

    def _decide(self, item: Executed) -> store.RunOutcome:
        run = item.run
        if item.succeeded:
            return store.RunOutcome(run.run_id, run.attempt, "succeeded", item.result, None,
                                    item.started_at, item.finished_at,
                                    http_status=item.http_status, response_excerpt=item.response_excerpt,
                                    scheduled=run.scheduled)
        policy = RetryPolicy.from_json(run.retry_policy, self.default_policy)
        decision = decide_retry(Outcome(False, item.retryable, item.retry_after_s), policy, run.attempt)
        if decision is None:
            return store.RunOutcome(run.run_id, run.attempt, "failed", item.result, item.error,
                                    item.started_at, item.finished_at,
                                    http_status=item.http_status, response_excerpt=item.response_excerpt,
                                    scheduled=run.scheduled)
        retry_at = item.finished_at + dt.timedelta(seconds=decision.delay_s)
        return store.RunOutcome(run.run_id, run.attempt, "retry", item.result, item.error,
                                item.started_at, item.finished_at, retry_at,
                                http_status=item.http_status, response_excerpt=item.response_excerpt,
                                scheduled=run.scheduled)

    def _record(self, batch: list[Executed]) -> None:
        outcomes = [self._decide(item) for item in batch]
        errors: dict[str, str] = {}
        ok_types: set[str] = set()
        for item in batch:
            if item.internal and item.error:
                errors[item.run.task_type] = item.error
            elif item.succeeded:
                ok_types.add(item.run.task_type)
        delay = 0.2
        while True:
            try:
                with transaction(self.engine) as conn:
                    recorded = store.record_outcomes(conn, self.id, outcomes)
                    for task_type, reason in errors.items():
                        processes.mark(conn, task_type, ProcessStatus.ERROR, reason,
                                       only_from=(ProcessStatus.ACTIVE,))
                    for task_type in ok_types - set(errors):
                        processes.mark(conn, task_type, ProcessStatus.ACTIVE,
                                       "a task succeeded again", only_from=(ProcessStatus.ERROR,))
                break
            except StoreUnavailable as exc:
                # keep trying: if our leases expire meanwhile, another tasker takes over and
                # this conditional record will simply be refused
                log_event(log, logging.WARNING, f"cannot record, database unavailable: {exc}",
                          action="record_retry", count=len(outcomes), worker=self.id)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        for outcome, item in zip(outcomes, batch, strict=True):
            run = item.run
            if outcome.run_id not in recorded:
                log_event(log, logging.WARNING, "result discarded: the run was taken over or cancelled meanwhile",
                          action="discard", task_id=run.task_id, run_id=run.run_id, attempt=run.attempt, worker=self.id)
            elif outcome.decision == "succeeded":
                log_event(log, logging.INFO, "run succeeded", action="succeeded", task_type=run.task_type,
                          task_id=run.task_id, run_id=run.run_id, attempt=run.attempt, worker=self.id)
            elif outcome.decision == "retry":
                log_event(log, logging.WARNING, f"attempt failed, retry at {outcome.retry_at}: {outcome.error}",
                          action="retry", task_type=run.task_type, task_id=run.task_id, run_id=run.run_id,
                          attempt=run.attempt, worker=self.id)
            else:
                log_event(log, logging.WARNING, f"run failed: {outcome.error}", action="failed",
                          task_type=run.task_type, task_id=run.task_id, run_id=run.run_id,
                          attempt=run.attempt, worker=self.id)
        self._finish([item.run.run_id for item in batch])

    def _finish(self, run_ids: list[str]) -> None:
        to_ack: dict[str, list[str]] = {}
        with self._lock:
            self._in_flight -= len(run_ids)
            for run_id in run_ids:
                for message in self._waiting.pop(run_id, []):
                    message.pending.discard(run_id)
                    if not message.pending:
                        to_ack.setdefault(message.task_type, []).append(message.receipt)
        for task_type, receipts in to_ack.items():
            self._ack(task_type, receipts)

    def _ack(self, task_type: str, receipts: list[str]) -> None:
        try:
            self.transport.ack(task_type, receipts)
        except QueueUnavailable as exc:
            # harmless: the message comes back and its runs are found already recorded
            log_event(log, logging.WARNING, f"could not delete messages: {exc}", action="ack_failed",
                      task_type=task_type, count=len(receipts), worker=self.id)

    def _safe_extend(self, task_type: str, receipts: list[str], seconds: int) -> None:
        with contextlib.suppress(QueueUnavailable):
            self.transport.extend(task_type, receipts, seconds)

    # --- status and heartbeats ------------------------------------------------------------

    def _mark_queue_down(self, task_type: str, reason: str) -> None:
        log_event(log, logging.WARNING, f"cannot receive: {reason}", action="receive_failed",
                  task_type=task_type, worker=self.id)
        if task_type in self._queue_down:
            return
        self._queue_down.add(task_type)
        try:
            with transaction(self.engine) as conn:
                processes.mark(conn, task_type, ProcessStatus.QUEUE, reason,
                               only_from=(ProcessStatus.ACTIVE, ProcessStatus.ERROR))
        except StoreUnavailable:
            pass

    def _mark_queue_up(self, task_type: str) -> None:
        if task_type not in self._queue_down:
            return
        try:
            with transaction(self.engine) as conn:
                processes.mark(conn, task_type, ProcessStatus.ACTIVE, "SQS answers again",
                               only_from=(ProcessStatus.QUEUE,))
            self._queue_down.discard(task_type)
        except StoreUnavailable:
            pass

    def _heartbeat_row(self) -> None:
        with transaction(self.engine) as conn:
            workers.heartbeat(conn, self.id, "tasker", self.queues, socket.gethostname(), os.getpid())

    def _heartbeat_loop(self) -> None:
        every = max(1.0, self.settings.lease_seconds / 3)
        while not self.stopping.wait(every):
            try:
                self._heartbeat_row()
                self._extend_long_runs(every)
            except StoreUnavailable as exc:
                log_event(log, logging.WARNING, f"heartbeat failed: {exc}", action="heartbeat", worker=self.id)
            except Exception:
                log.exception("heartbeat failed", extra={"worker": self.id})

    def _extend_long_runs(self, older_than_s: float) -> None:
        now = time.monotonic()
        with self._lock:
            run_ids = list(self._waiting)
            messages = {
                id(m): m for ms in self._waiting.values() for m in ms if now - m.received_at >= older_than_s
            }
        if not run_ids:
            return
        with transaction(self.engine) as conn:
            store.extend_leases(conn, run_ids, self.id, self.settings.lease_seconds)
        by_type: dict[str, list[str]] = {}
        for m in messages.values():
            by_type.setdefault(m.task_type, []).append(m.receipt)
        for task_type, receipts in by_type.items():
            self._safe_extend(task_type, receipts, self.settings.lease_seconds)
