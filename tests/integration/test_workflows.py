"""Workflows end to end: real PostgreSQL, SQS over HTTP, in-process taskers and controllers and
a local HTTP target that becomes ready after K checks, never does, or fails a step."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from db.store import clients
from tests.conftest import authed
from tests.support.processes import spawn
from tests.support.wait import wait_for

FAST = {"condition_check_delay": 0, "condition_check_interval": 0.2}


def spawn_controller(settings: Any, log_path: Path) -> subprocess.Popen[bytes]:
    """A real ``tasker controller`` process (so it can be SIGKILLed)."""
    return spawn("controller", settings, log_path)


def create(client: Any, **body: Any) -> str:
    response = client.post("/workflows", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == f"/workflows/{response.get_json()['id']}"
    return str(response.get_json()["id"])


def finished(client: Any, workflow_id: str) -> dict[str, Any] | None:
    body = client.get(f"/workflows/{workflow_id}").get_json()
    return body if body["status"] in ("success", "failed", "cancelled") else None


def wait_finished(client: Any, workflow_id: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: finished(client, workflow_id), timeout=timeout, what=f"workflow {workflow_id} to end")


def kinds(body: dict[str, Any]) -> list[tuple[str, int, int, str | None]]:
    return [(i["kind"], i["position"], i["attempt"], i["outcome"]) for i in body["items"]]


def items_in_db(engine: Any, workflow_id: str) -> list[tuple[str, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, position, attempt FROM workflow_items WHERE workflow_id = :w "
                                 "ORDER BY id"), {"w": workflow_id}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_steps_run_in_order_with_checks_until_the_target_is_ready(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok?step=1"}, {"task": "sum2", "params": {"first": 2, "second": 3}}],
                 condition_check={"url": target.url + "/ready/3/a", "json_field": "state", "equals": "ready"}, **FAST)
    body = wait_finished(client, wid)
    assert body["status"] == "success", body
    assert body["message"] == "all 2 steps succeeded"
    # step 1, then checks until the 3rd call of /ready/3/a says ready, then step 2 and its check (4th call: ready)
    assert kinds(body) == [("step", 0, 0, "succeeded"), ("check", 0, 0, "not_passed"), ("check", 0, 1, "not_passed"),
                           ("check", 0, 2, "passed"), ("step", 1, 0, "succeeded"), ("check", 1, 0, "passed")]
    assert len(target.arrivals_for("/ready/3/a")) == 4
    # every item carries the attempt records of its task, as GET /tasks/{id}/results does
    step1 = body["items"][0]
    assert [a["outcome"] for a in step1["attempts"]] == ["succeeded"] and step1["attempts"][0]["status_code"] == 200
    check = body["items"][1]
    assert check["attempts"][0]["status_code"] == 200 and "pending" in check["attempts"][0]["response_excerpt"]
    assert client.get(f"/tasks/{body['items'][4]['task_id']}").get_json()["result"] == 5


def test_a_condition_that_never_passes_runs_the_fallback_and_fails(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok"}, {"url": target.url + "/ok?never"}],
                 condition_check={"url": target.url + "/ready/1000/b", "json_field": "state", "equals": "ready"},
                 condition_check_retries=2, fallback={"url": target.url + "/echo?fallback"}, **FAST)
    body = wait_finished(client, wid)
    assert body["status"] == "failed"
    assert kinds(body) == [("step", 0, 0, "succeeded"), ("check", 0, 0, "not_passed"), ("check", 0, 1, "not_passed"),
                           ("check", 0, 2, "not_passed"), ("fallback", 0, 0, "succeeded")]
    assert "did not pass after 3 checks" in body["message"] and "the fallback succeeded" in body["message"]
    assert target.arrivals_for("/ok?never") == []  # step 2 never ran
    assert len(target.arrivals_for("/echo?fallback")) == 1


def test_check_by_status_code_passes_once_the_target_answers_2xx(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok"}],
                 condition_check={"url": target.url + "/fail/2/c"}, **FAST)
    body = wait_finished(client, wid)
    assert body["status"] == "success"
    assert [i["outcome"] for i in body["items"]] == ["succeeded", "not_passed", "not_passed", "passed"]


def test_a_failing_step_runs_the_fallback_once_and_stops(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/fail/100/d", "retries": 1, "retry_base_s": 0.1},
                                {"url": target.url + "/ok?after"}],
                 condition_check={"url": target.url + "/ok?check"},
                 fallback={"task": "sum2", "params": {"first": 1, "second": 1}}, **FAST)
    body = wait_finished(client, wid)
    assert body["status"] == "failed"
    assert kinds(body) == [("step", 0, 0, "failed"), ("fallback", 0, 0, "succeeded")]
    assert "step 1 failed: HTTP 503" in body["message"]
    assert [a["outcome"] for a in body["items"][0]["attempts"]] == ["failed", "failed"]  # its own retries
    assert target.arrivals_for("/ok?after") == [] and target.arrivals_for("/ok?check") == []


def test_a_failing_step_without_fallback_fails_the_workflow(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/status/400"}, {"url": target.url + "/ok?after"}])
    body = wait_finished(client, wid)
    assert body["status"] == "failed" and body["message"] == "step 1 failed: HTTP 400"
    assert kinds(body) == [("step", 0, 0, "failed")]


def test_a_step_can_send_the_previous_steps_answer_as_its_body(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ready/1/e"},
                                {"url": target.url + "/echo?second", "body_from": "previous"}])
    assert wait_finished(client, wid)["status"] == "success"
    [second] = target.arrivals_for("/echo?second")
    assert second.method == "POST"
    assert json.loads(second.body) == {"state": "ready", "call": 1}


def test_cancel_before_start_means_no_step_ever_runs(client: Any, threads: Any, target: Any, engine: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok?never"}], initial_delay=1)
    assert client.get(f"/workflows/{wid}").get_json()["status"] == "scheduled"
    response = client.delete(f"/workflows/{wid}")
    assert response.status_code == 200
    assert response.get_json() == {"id": wid, "status": "cancelled",
                                   "message": "cancelled before it started; no step will run"}
    time.sleep(2)  # past its start: still nothing
    assert target.arrivals_for("/ok?never") == [] and items_in_db(engine, wid) == []
    assert client.delete(f"/workflows/{wid}").status_code == 409


def test_cancel_mid_run_stops_before_the_next_step_and_says_so(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok"}, {"url": target.url + "/ok?second"}],
                 condition_check={"url": target.url + "/ready/1000/f", "json_field": "state", "equals": "ready"},
                 condition_check_retries=1000, condition_check_interval=0.2)
    wait_for(lambda: len(target.arrivals_for("/ready/1000/f")) >= 2, what="a few checks")
    response = client.delete(f"/workflows/{wid}")
    assert response.status_code == 200
    message = response.get_json()["message"]
    assert "cancelled while the condition check after step 1 was running" in message
    body = client.get(f"/workflows/{wid}").get_json()
    assert body["status"] == "cancelled" and body["message"] == message
    checks = len(target.arrivals_for("/ready/1000/f"))
    time.sleep(1)  # five intervals: no further check and no second step
    assert len(target.arrivals_for("/ready/1000/f")) <= checks + 1  # the one in flight may finish
    assert target.arrivals_for("/ok?second") == []


def test_a_controller_killed_mid_workflow_is_resumed_by_another_without_repeats(
    client: Any, threads: Any, target: Any, engine: Any
) -> None:
    threads.worker()
    first = threads.controller()
    wid = create(client, steps=[{"url": target.url + "/ok?one"}, {"url": target.url + "/ok?two"},
                                {"url": target.url + "/ok?three"}],
                 condition_check={"url": target.url + "/ready/4/g", "json_field": "state", "equals": "ready"},
                 condition_check_retries=10, condition_check_interval=0.3)
    wait_for(lambda: len(target.arrivals_for("/ready/4/g")) >= 2, what="checks after step 1")
    first.stopping.set()
    first.thread.join(timeout=10)
    stalled = len(target.arrivals_for("/ready/4/g"))
    time.sleep(1)
    assert len(target.arrivals_for("/ready/4/g")) <= stalled + 1  # nothing moves without a controller
    assert client.get(f"/workflows/{wid}").get_json()["status"] == "running"
    threads.controller()
    threads.controller()  # two controllers now: still nothing twice
    body = wait_finished(client, wid)
    assert body["status"] == "success"
    positions = items_in_db(engine, wid)
    assert len(positions) == len(set(positions))
    for path in ("/ok?one", "/ok?two", "/ok?three"):
        assert len(target.arrivals_for(path)) == 1, path
    assert [k for k, *_ in positions].count("step") == 3


def test_a_sigkilled_controller_process_loses_nothing_and_repeats_nothing(
    client: Any, settings: Any, threads: Any, target: Any, engine: Any, tmp_path: Path
) -> None:
    threads.worker()
    wid = create(client, steps=[{"url": target.url + "/ok?k1"}, {"url": target.url + "/ok?k2"}],
                 condition_check={"url": target.url + "/ready/6/h", "json_field": "state", "equals": "ready"},
                 condition_check_retries=20, condition_check_interval=0.2)
    first = spawn_controller(settings, tmp_path / "controller-1.log")
    try:
        wait_for(lambda: len(target.arrivals_for("/ready/6/h")) >= 3, what="checks after step 1")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert client.get(f"/workflows/{wid}").get_json()["status"] == "running"
    second = spawn_controller(settings, tmp_path / "controller-2.log")
    try:
        body = wait_finished(client, wid, timeout=40)
    finally:
        second.terminate()
        second.wait(20)
    assert body["status"] == "success", body
    positions = items_in_db(engine, wid)
    assert len(positions) == len(set(positions))
    assert [(k, p) for k, p, _ in positions if k == "step"] == [("step", 0), ("step", 1)]
    assert len(target.arrivals_for("/ok?k1")) == 1 and len(target.arrivals_for("/ok?k2")) == 1
    checks = [a for k, _, a in positions if k == "check"]
    assert len(target.arrivals_for("/ready/6/h")) == len(checks)  # every check call is a recorded check


def test_workflows_are_listed_by_state_and_owned_like_tasks(app: Any, client: Any, engine: Any, target: Any) -> None:
    with engine.begin() as conn:
        alice = clients.create(conn, "alice").key
        bob = clients.create(conn, "bob").key
    as_alice, as_bob = authed(app.test_client(), alice), authed(app.test_client(), bob)
    wid = create(as_alice, steps=[{"url": target.url + "/ok", "headers": {"Authorization": "Bearer sekrit-value"}}],
                 initial_delay="1h")
    listed = as_alice.get("/workflows?state=scheduled").get_json()
    assert listed["count"] == 1 and listed["workflows"][0]["id"] == wid
    assert listed["workflows"][0]["spec"]["steps"][0]["params"]["headers"]["Authorization"] == "[redacted]"
    assert as_alice.get("/workflows?state=running").get_json()["count"] == 0
    forbidden = {"error": {"message": "Forbidden: Workflow does not belong to this user"}}
    assert as_bob.get(f"/workflows/{wid}").get_json() == forbidden
    assert as_bob.delete(f"/workflows/{wid}").status_code == 403
    assert as_bob.get("/workflows").get_json()["count"] == 0
    assert as_bob.get("/workflows?client=*").status_code == 403
    assert as_bob.get("/workflows/nope").status_code == 404
    assert client.get("/workflows?client=*").get_json()["count"] == 1  # the admin sees everyone's
    assert as_alice.get(f"/workflows/{wid}").get_json()["status"] == "scheduled"


def test_bad_workflows_get_400_naming_the_problem(client: Any, target: Any) -> None:
    cases = [
        ({}, "missing 'steps'"),
        ({"steps": []}, "'steps' must be a list of 1 to 20 task specs"),
        ({"steps": [{"task": "sum2", "params": {"first": 1}}]}, "steps[0]: missing param 'second' for sum2"),
        ({"steps": [{"url": target.url, "delay": 5}]}, "steps[0]: unknown field 'delay'"),
        ({"steps": [{"url": target.url, "body_from": "previous"}]}, "steps[0]: the first step has no previous step"),
        ({"steps": [{"url": target.url}], "condition_check_retries": 2}, "need a 'condition_check'"),
        ({"steps": [{"url": target.url}], "condition_check": {"url": "http://10.0.0.1/x"}}, "condition_check:"),
        ({"steps": [{"url": target.url}], "condition_check": {"url": target.url, "equals": 1}}, "'equals' needs 'json_field'"),
        ({"steps": [{"url": target.url}], "initial_delay": "soon"}, "'initial_delay' must be a number of seconds"),
        ({"steps": [{"url": target.url}], "run_at": "2030-01-01T00:00:00Z", "initial_delay": 1}, "either 'run_at' or"),
        ({"steps": [{"url": target.url}], "fallback": {"task": "nope"}}, "fallback: unknown task 'nope'"),
    ]
    for body, needle in cases:
        response = client.post("/workflows", json=body)
        assert response.status_code == 400, (body, response.get_json())
        assert needle in response.get_json()["error"]["message"], (body, response.get_json())
