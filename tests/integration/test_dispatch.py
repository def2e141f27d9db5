"""Bounded queues and dispatch that never doubles, whoever dispatches."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import Any

from sqlalchemy import text

from core.dispatch import Dispatcher
from core.messages import decode
from core.sqs import Transport
from tests.conftest import authed
from tests.integration.test_process_flow import completed, submit
from tests.support.wait import wait_for


def drain(transport: Transport, task_type: str) -> list[str]:
    """Receive every message of a queue; return the run ids they name (deleting them)."""
    run_ids: list[str] = []
    while True:
        got = transport.receive(task_type, wait_s=1)
        if not got:
            return run_ids
        for m in got:
            run_ids += [r.run_id for r in decode(m.body).runs]
        transport.ack(task_type, [m.receipt for m in got])


def test_queue_never_holds_more_than_the_window_and_the_backlog_waits_in_postgres(
    settings: Any, engine: Any, threads: Any
) -> None:
    from api.app import create_app

    small = dataclasses.replace(settings, queue_window=5, runs_per_message=2)
    client = authed(create_app(small, engine=engine).test_client())
    threads.controller(queue_window=5, runs_per_message=2)
    rids = [submit(client, "sum2", {"first": i, "second": 100})["rid"] for i in range(40)]
    transport = Transport(small)

    def dispatched() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM runs WHERE status = 'dispatched'")).scalar_one())

    wait_for(lambda: dispatched() == 5, what="the window to fill")
    for _ in range(10):  # it stays full, never more
        depth = transport.depth("sum2")
        assert depth["visible"] + depth["in_flight"] <= 5
        assert dispatched() <= 5
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs WHERE status = 'pending'")).scalar_one() == 35

    threads.worker(queue_window=5, runs_per_message=2)
    for i, rid in enumerate(rids):
        assert wait_for(lambda r=rid: completed(client, r), what="the backlog to drain")["result"] == i + 100
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'completed'")).scalar_one() == 40


def test_two_controllers_never_dispatch_the_same_run_twice(settings: Any, engine: Any, client: Any) -> None:
    # 300 accepted runs, no API dispatch (as if SQS was down when they came in)
    client.application.extensions["tasker"].dispatcher.submit = lambda *a: None
    for i in range(300):
        submit(client, "sum2", {"first": i, "second": 7})
    transport = Transport(settings)
    dispatchers = [Dispatcher(engine, Transport(settings), settings, source=f"c{i}") for i in range(2)]
    barrier = threading.Barrier(2)

    def run(d: Dispatcher) -> None:
        barrier.wait()
        for _ in range(20):
            d.dispatch("sum2")

    workers = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sent = drain(transport, "sum2")
    counts = Counter(sent)
    assert len(counts) == 300
    assert max(counts.values()) == 1
