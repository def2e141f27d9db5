"""Process statuses: suspended types hold work; handler errors flag a type until it succeeds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.integration.test_process_flow import completed, request_by_rid, submit
from tests.support.wait import wait_for


def process_status(client: Any, task_type: str) -> dict[str, Any]:
    body = client.get("/get_processes_status").get_json()["get_processes_status"]
    return body["processes"][task_type]


def test_suspended_process_holds_requests_until_resumed_then_runs_them_in_arrival_order(
    client: Any, threads: Any, engine: Any, transport: Any
) -> None:
    threads.worker()
    threads.controller()
    response = client.post("/set_processes_status", json={"mult3": "suspended"})
    assert response.status_code == 200
    assert response.get_json()["set_processes_status"]["processes"] == {"mult3": "suspended"}
    assert process_status(client, "mult3")["status"] == "suspended"

    held = []
    for i in range(5):
        r = client.post("/process", json={"task": "mult3", "client_name": "ops", "params": {"first": i, "second": 1, "third": 1}})
        assert r.status_code == 202
        assert r.get_json()["process"]["status"] == "held"
        held.append(r.get_json()["process"]["rid"])
    # other types keep working meanwhile
    other = submit(client, "sum2", {"first": 5, "second": 5}, name="ops")
    wait_for(lambda: completed(client, other["rid"], "ops"), what="sum2 while mult3 is suspended")
    # nothing of the suspended type went to SQS
    assert transport.depth("mult3") == {"visible": 0, "in_flight": 0, "delayed": 0}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs WHERE task_type = 'mult3' AND status <> 'pending'")).scalar_one() == 0
    assert all(request_by_rid(client, rid, "ops")["status"] == "held" for rid in held)

    assert client.post("/set_processes_status", json={"mult3": "active"}).status_code == 200
    for rid in held:
        assert wait_for(lambda r=rid: completed(client, r, "ops"), what="held requests after resume")["status"] == "completed"
    with engine.connect() as conn:
        order = conn.execute(text(
            "SELECT t.id FROM runs r JOIN tasks t ON t.id = r.task_id WHERE r.task_type = 'mult3' ORDER BY r.dispatched_at, r.seq"
        )).scalars().all()
    assert order == held


def test_handler_error_sets_error_status_with_reason_and_next_success_clears_it(client: Any, threads: Any) -> None:
    threads.worker()
    bad = submit(client, "boom", {"fail": True, "tag": "a"}, retries=0)
    item = wait_for(lambda: completed(client, bad["rid"]), what="the failing task")
    assert item["status"] == "failed"
    assert "exploded on purpose" in item["error"]
    status = wait_for(lambda: (s := process_status(client, "boom"))["status"] == "error" and s, what="error status")
    assert "RuntimeError" in status["reason"] and "exploded on purpose" in status["reason"]

    good = submit(client, "boom", {"fail": False, "tag": "b"})
    wait_for(lambda: completed(client, good["rid"]), what="the succeeding task")
    assert wait_for(lambda: process_status(client, "boom")["status"] == "active", what="error cleared")


def test_failing_handler_is_retried_with_every_attempt_recorded(client: Any, threads: Any, engine: Any) -> None:
    threads.worker()
    threads.controller()  # retries are dispatched by the controller when due
    bad = submit(client, "boom", {"fail": True, "tag": "r"}, retries=2)
    item = wait_for(lambda: completed(client, bad["rid"]), what="three attempts")
    assert item["status"] == "failed" and item["attempts"] == 3
    with engine.connect() as conn:
        outcomes = conn.execute(
            text("SELECT attempt, outcome FROM attempts WHERE task_id = :id ORDER BY attempt"), {"id": bad["rid"]}
        ).all()
    assert [tuple(o) for o in outcomes] == [(1, "failed"), (2, "failed"), (3, "failed")]
