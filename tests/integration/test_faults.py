"""Nothing accepted is lost: a tasker killed mid-task, SQS down for a while, PostgreSQL down."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cli.embedded import EmbeddedPostgres, LocalSQS, free_port
from core.settings import Settings
from db.engine import make_engine
from db.migrate import upgrade
from tests.conftest import authed
from tests.integration.test_process_flow import completed, submit
from tests.support.processes import spawn
from tests.support.wait import wait_for


def spawn_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    return spawn("worker", settings, log_path)


def test_tasker_killed_mid_task_is_taken_over_and_the_result_recorded_once(
    client: Any, settings: Settings, engine: Any, threads: Any, tmp_path: Path
) -> None:
    fast = dataclasses.replace(settings, lease_seconds=3)
    first = spawn_worker(fast, tmp_path / "worker-1.log")
    try:
        answer = submit(client, "sleep", {"seconds": 2, "tag": "kill-me"})
        rid = answer["rid"]

        def running_on_first() -> bool:
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT status = 'running' FROM runs WHERE task_id = :id"), {"id": rid}
                ).scalar_one()

        wait_for(running_on_first, what="the first tasker to start the task")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    second = spawn_worker(fast, tmp_path / "worker-2.log")
    try:
        item = wait_for(lambda: completed(client, rid), timeout=40, what="another tasker to finish the task")
    finally:
        second.terminate()
        second.wait(20)
    assert item["status"] == "completed"
    assert item["result"] == {"slept": 2, "tag": "kill-me"}
    with engine.connect() as conn:
        attempts = conn.execute(
            text("SELECT attempt, outcome FROM attempts WHERE task_id = :id ORDER BY attempt"), {"id": rid}
        ).all()
        successes = conn.execute(
            text("SELECT count(*) FROM task_events WHERE task_id = :id AND kind = 'completed'"), {"id": rid}
        ).scalar_one()
    assert [tuple(a) for a in attempts] == [(1, "lost"), (2, "succeeded")]
    assert successes == 1


@pytest.fixture
def own_sqs(tmp_path: Path) -> Any:
    server = LocalSQS(port=free_port(), log_path=tmp_path / "own-sqs.log")
    server.start()
    yield server
    server.stop()


def test_requests_accepted_while_sqs_is_down_are_delivered_once_it_is_back(
    settings: Settings, engine: Any, own_sqs: LocalSQS, threads: Any
) -> None:
    from api.app import create_app

    s = dataclasses.replace(settings, sqs_endpoint=own_sqs.url, redispatch_after=2)
    threads.settings = s
    app = create_app(s, engine=engine)
    client = authed(app.test_client())
    threads.controller()
    threads.worker()
    before = submit(client, "sum2", {"first": 1, "second": 1000})
    wait_for(lambda: completed(client, before["rid"]), what="delivery while SQS is up")

    own_sqs.stop()
    codes, rids = [], []
    for i in range(20):
        response = client.post("/process", json={"task": "sum2", "client_name": "sh", "params": {"first": i, "second": 2000}})
        codes.append(response.status_code)
        rids.append(response.get_json()["process"]["rid"])
        if i == 0:  # Tasker learns that SQS is down from the first failed send (API or controller)
            status = wait_for(
                lambda: (p := client.get("/get_processes_status").get_json()["get_processes_status"]["processes"]["sum2"])["status"] == "queue" and p,
                what="process status 'queue'",
            )
    # once it is known, every request says it was stored and will be sent later
    assert set(codes[1:]) == {202}
    assert "SQS" in status["reason"]
    assert status["queue_depth"] is None
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT status, count(*) FROM runs GROUP BY status")).all())
        assert counts.get("pending", 0) + counts.get("dispatched", 0) == 20, counts

    restarted = LocalSQS(port=own_sqs.port, log_path=own_sqs.log_path)
    restarted.start()
    try:
        for i, rid in enumerate(rids):
            item = wait_for(lambda r=rid: completed(client, r), timeout=40, what="delivery after SQS is back")
            assert item["result"] == i + 2000
        wait_for(lambda: client.get("/get_processes_status").get_json()["get_processes_status"]["processes"]["sum2"]["status"] == "active",
                 what="status back to active")
        with engine.connect() as conn:
            per_task = conn.execute(text(
                "SELECT count(*) FROM attempts WHERE outcome = 'succeeded' GROUP BY task_id"
            )).scalars().all()
        assert len(per_task) == 21 and set(per_task) == {1}
    finally:
        threads.stop_all()
        threads.started.clear()
        restarted.stop()


def test_api_answers_503_json_while_postgres_is_down_and_recovers_without_restart(
    tmp_path: Path, sqs_server: LocalSQS, settings: Settings
) -> None:
    from api.app import create_app

    pg = EmbeddedPostgres(tmp_path / "owned")
    url = pg.start()
    try:
        upgrade(url)
        s = dataclasses.replace(settings, database_url=url, insecure_no_auth=1)
        engine = make_engine(url, pre_ping=False)
        app = create_app(s, engine=engine)
        client = app.test_client()
        body = {"task": "sum2", "client_name": "sh", "params": {"first": 1, "second": 2}}
        assert client.post("/process", json=body).status_code == 201
        pg.stop()
        for _ in range(3):
            response = client.post("/process", json=body)
            assert response.status_code == 503
            assert "database unavailable" in response.get_json()["error"]["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["sqs"] == "ok"
        listing = client.get("/get_requests_status?client_name=sh")
        assert listing.status_code == 503 and "error" in listing.get_json()
        pg.start()
        response = wait_for(
            lambda: (r := client.post("/process", json={**body, "params": {"first": 2, "second": 2}})).status_code == 201 and r,
            what="the API to recover",
        )
        assert response.get_json()["process"]["status"] == "queued"
        assert client.get("/readyz").status_code == 200
        app.extensions["tasker"].dispatcher.stop()
        engine.dispose()
    finally:
        pg.stop()
