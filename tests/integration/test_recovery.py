"""The controller gets lost work back: expired leases, messages that vanished, poison messages."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from sqlalchemy import text

from core.settings import Settings
from core.sqs import Transport
from tests.integration.test_dispatch import drain
from tests.integration.test_process_flow import completed, submit
from tests.support.wait import wait_for


def no_api_dispatch(client: Any) -> None:
    """Accept requests but never send them from the API (as if it crashed after committing)."""
    client.application.extensions["tasker"].dispatcher.submit = lambda *a: None


def test_run_whose_worker_vanished_is_recovered_by_the_controller_and_finished(
    client: Any, engine: Any, threads: Any
) -> None:
    no_api_dispatch(client)
    rid = submit(client, "sum2", {"first": 5, "second": 6})["rid"]
    # a tasker claimed it, then disappeared together with its message
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE runs SET status = 'running', attempt = 1, worker_id = 'gone', "
            "lease_until = now() - interval '1 hour' WHERE task_id = :id"), {"id": rid})
        conn.execute(text("UPDATE tasks SET status = 'running' WHERE id = :id"), {"id": rid})
    threads.worker()
    threads.controller()
    item = wait_for(lambda: completed(client, rid), what="recovery and completion")
    assert item["status"] == "completed" and item["result"] == 11
    with engine.connect() as conn:
        attempts = conn.execute(text(
            "SELECT attempt, outcome, worker_id FROM attempts WHERE task_id = :id ORDER BY attempt"), {"id": rid}).all()
        events = conn.execute(text("SELECT message FROM task_events WHERE task_id = :id ORDER BY id"), {"id": rid}).scalars().all()
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "lost"), (2, "succeeded")]
    assert attempts[0].worker_id == "gone"
    assert any("lost" in e for e in events)


def test_dispatched_run_whose_message_was_lost_is_sent_again(
    client: Any, engine: Any, threads: Any, settings: Settings
) -> None:
    no_api_dispatch(client)
    rid = submit(client, "sum2", {"first": 7, "second": 8})["rid"]
    # claimed for dispatch, then the dispatcher died before sending
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE runs SET status = 'dispatched', dispatched_at = now() - interval '1 hour' WHERE task_id = :id"),
            {"id": rid})
    threads.worker()
    threads.controller(redispatch_after=5)
    assert wait_for(lambda: completed(client, rid), what="the lost run to be sent again")["result"] == 15


def test_two_controllers_dispatch_every_run_exactly_once(client: Any, settings: Settings, threads: Any) -> None:
    no_api_dispatch(client)
    rids = [submit(client, "sum2", {"first": i, "second": 9})["rid"] for i in range(200)]
    threads.controller()
    threads.controller()
    transport = Transport(settings)
    seen: list[str] = []
    wait_for(lambda: (seen.extend(drain(transport, "sum2")) or len(seen) >= 200), timeout=30,
             what="every run to be dispatched")
    seen += drain(transport, "sum2")
    assert len(rids) == len(set(seen)) == 200
    assert max(Counter(seen).values()) == 1


def test_a_message_that_is_not_ours_ends_in_the_dead_letter_queue(
    settings: Settings, engine: Any, threads: Any
) -> None:
    s = dataclasses.replace(settings, lease_seconds=2, max_receives=2)
    threads.settings = s
    transport = Transport(s)
    url = transport.ensure_queue("sum2")
    transport.client.send_message(QueueUrl=url, MessageBody="this is not a Tasker message")
    threads.worker()
    dlq_url = transport.client.get_queue_url(QueueName=transport.queue_name("sum2") + "-dlq")["QueueUrl"]

    def in_dlq() -> Any:
        got = transport.client.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
        return got and got[0]["Body"]

    assert wait_for(in_dlq, timeout=30, what="the poison message in the DLQ") == "this is not a Tasker message"
