"""Per-client limits: the quota of pending and scheduled tasks, and a request rate that holds
across API processes (two ``create_app`` instances on one database)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.app import create_app
from api.limits import block_size
from core import catalogue
from db.engine import transaction
from db.store import clients, processes
from tests.conftest import authed
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
MakeApp = Callable[..., Any]


@pytest.fixture
def make_app(settings: Any, engine: Any) -> Iterator[MakeApp]:
    """``make_app(**settings)``: one more API process on the test's database."""
    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        application = create_app(dataclasses.replace(settings, **overrides), engine=engine)
        made.append(application)
        return application

    with transaction(engine) as conn:
        processes.ensure_processes(conn, catalogue.names())
    yield make
    for application in made:
        application.extensions["tasker"].dispatcher.stop()


def new_key(engine: Any, name: str, **limits: Any) -> str:
    with engine.begin() as conn:
        return clients.create(conn, name, **limits).key


def as_(app: Any, key: str) -> Any:
    return authed(app.test_client(), key)


def process(api: Any, n: int) -> Any:
    return api.post("/process", json={"task": "sum2", "params": {"first": n, "second": 0}})


def later(n: int) -> dict[str, Any]:
    return {"task": "sum2", "params": {"first": n, "second": 1}, "delay": "1h"}


def active(engine: Any, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(
            text("SELECT count(*) FROM tasks t JOIN clients c ON c.id = t.client_id "
                 "WHERE c.name = :name AND t.status NOT IN ('completed', 'failed', 'cancelled')"),
            {"name": name},
        ).scalar_one())


def message(response: Any) -> str:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


# --- quota ----------------------------------------------------------------------------------


def test_reaching_the_quota_refuses_process_tasks_and_whole_batches(make_app: MakeApp, engine: Any) -> None:
    alice = as_(make_app(quota_active_tasks=3), new_key(engine, "alice"))
    for n in range(3):
        assert process(alice, n).status_code in (201, 202)
    refused = process(alice, 99)
    assert refused.status_code == 429
    text_ = message(refused)
    assert "quota exceeded" in text_ and "'alice'" in text_ and "3 pending or scheduled tasks" in text_
    assert "TASKER_QUOTA_ACTIVE_TASKS" in text_ and "quota 3" in text_
    assert "Retry-After" not in refused.headers

    created = alice.post("/tasks", json=later(1))
    assert created.status_code == 429 and "quota exceeded" in message(created)
    assert active(engine, "alice") == 3

    rid = alice.get("/tasks").get_json()["tasks"][0]["id"]
    assert alice.delete(f"/tasks/{rid}").status_code == 200  # cancelling frees one place
    batch = alice.post("/tasks/batch", json={"tasks": [later(2), later(3)]})
    assert batch.status_code == 429
    assert "these 2 would make 4" in message(batch)
    assert active(engine, "alice") == 2  # nothing of the batch was stored
    assert alice.post("/tasks/batch", json={"tasks": [later(4)]}).status_code == 201
    assert active(engine, "alice") == 3
    assert alice.post("/tasks", json=later(5)).status_code == 429


def test_a_clients_own_quota_overrides_the_setting(make_app: MakeApp, engine: Any) -> None:
    app = make_app(quota_active_tasks=100)
    carol = as_(app, new_key(engine, "carol", quota_active_tasks=1))
    dave = as_(app, new_key(engine, "dave"))
    assert carol.post("/tasks", json=later(1)).status_code == 201
    refused = carol.post("/tasks", json=later(2))
    assert refused.status_code == 429
    assert "quota 1" in message(refused) and "tasker clients limits" in message(refused)
    for n in range(3):
        assert dave.post("/tasks", json=later(n)).status_code == 201


def test_retrying_a_failed_task_counts_against_the_quota(make_app: MakeApp, engine: Any) -> None:
    alice = as_(make_app(quota_active_tasks=1), new_key(engine, "alice"))
    failed = alice.post("/tasks", json=later(1)).get_json()["id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET status = 'failed' WHERE id = :id"), {"id": failed})
    assert alice.post("/tasks", json=later(2)).status_code == 201  # the failed one no longer counts
    refused = alice.post(f"/tasks/{failed}/retry")
    assert refused.status_code == 429 and "quota 1" in message(refused)


def test_finished_tasks_free_the_quota(make_app: MakeApp, engine: Any, threads: Any) -> None:
    alice = as_(make_app(quota_active_tasks=2), new_key(engine, "alice"))
    assert process(alice, 1).status_code in (201, 202)
    assert process(alice, 2).status_code in (201, 202)
    assert process(alice, 3).status_code == 429
    threads.worker()
    attempts = iter(range(100, 10_000))
    wait_for(lambda: process(alice, next(attempts)).status_code in (201, 202), timeout=30,
             what="a finished task to make room")


def test_the_quota_applies_to_the_named_client_when_keys_are_off(make_app: MakeApp, engine: Any) -> None:
    api = make_app(quota_active_tasks=1, insecure_no_auth=1).test_client()
    body = {"task": "sum2", "client_name": "erin", "params": {"first": 1, "second": 2}}
    assert api.post("/process", json=body).status_code in (201, 202)
    refused = api.post("/process", json={**body, "params": {"first": 2, "second": 2}})
    assert refused.status_code == 429 and "'erin'" in message(refused)
    assert api.post("/process", json={**body, "client_name": "frank"}).status_code in (201, 202)


# --- rate -----------------------------------------------------------------------------------


def assert_rate_limited(response: Any) -> int:
    assert response.status_code == 429, response.get_data(as_text=True)
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    text_ = message(response)
    assert "rate limit exceeded" in text_ and f"retry in {seconds} s" in text_
    return seconds


def test_over_the_rate_a_client_gets_429_with_retry_after(make_app: MakeApp, engine: Any) -> None:
    api = as_(make_app(rate_limit_per_s=0.5, rate_limit_burst=3), new_key(engine, "alice"))
    assert [api.get("/tasks").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/tasks")
    assert assert_rate_limited(refused) == 2  # one token takes 2 s at 0.5/s
    assert "0.5 requests per second (burst 3, TASKER_RATE_LIMIT_PER_S)" in message(refused)
    assert api.post("/process", json={"task": "sum2", "params": {"first": 1, "second": 1}}).status_code == 429
    anonymous = make_app(rate_limit_per_s=0.5, rate_limit_burst=3).test_client()
    assert anonymous.get("/healthz").status_code == 200  # public paths are not limited


def test_the_rate_limit_holds_across_two_api_processes(make_app: MakeApp, engine: Any) -> None:
    rate, burst = 40.0, 10
    key = new_key(engine, "alice")
    first, second = (as_(make_app(rate_limit_per_s=rate, rate_limit_burst=burst), key) for _ in range(2))
    allowed = refused = 0
    started = time.monotonic()
    for i in range(150):
        response = (first if i % 2 else second).get("/tasks?limit=1")
        if response.status_code == 429:
            assert_rate_limited(response)
            refused += 1
        else:
            assert response.status_code == 200
            allowed += 1
    elapsed = time.monotonic() - started
    block = block_size(rate, burst)
    assert block == 2
    # one bucket for both: separate buckets would allow twice the burst and twice the rate
    assert allowed <= burst + rate * elapsed + 2 * block, (allowed, elapsed)
    assert allowed >= burst - 2 * block and refused > 0


def test_one_clients_rate_limit_does_not_affect_another(make_app: MakeApp, engine: Any) -> None:
    app = make_app(rate_limit_per_s=1000.0, rate_limit_burst=2000)
    alice = as_(app, new_key(engine, "alice", rate_limit_per_s=0.1, rate_limit_burst=2))
    bob = as_(app, new_key(engine, "bob"))
    assert [alice.get("/tasks").status_code for _ in range(2)] == [200, 200]
    refused = alice.get("/tasks")
    assert assert_rate_limited(refused) == 10
    assert "set for this client by `tasker clients limits`" in message(refused)
    assert [bob.get("/tasks").status_code for _ in range(20)] == [200] * 20
    assert alice.get("/tasks").status_code == 429


def test_tokens_refill_after_retry_after(make_app: MakeApp, engine: Any) -> None:
    api = as_(make_app(rate_limit_per_s=2.0, rate_limit_burst=2), new_key(engine, "alice"))
    assert [api.get("/tasks").status_code for _ in range(2)] == [200, 200]
    denied_at = time.monotonic()
    seconds = assert_rate_limited(api.get("/tasks"))
    assert seconds == 1
    assert api.get("/tasks").status_code == 429  # remembered, not asked again
    wait_for(lambda: api.get("/tasks").status_code == 200, timeout=seconds + 10, interval=0.1,
             what="a token after Retry-After")
    assert time.monotonic() - denied_at >= 0.3  # half a second per token at 2/s, minus the rounding


def test_with_keys_off_there_is_no_rate_limit(make_app: MakeApp) -> None:
    api = make_app(rate_limit_per_s=0.1, rate_limit_burst=1, insecure_no_auth=1).test_client()
    assert [api.get("/tasks").status_code for _ in range(5)] == [200] * 5


def test_a_zero_rate_turns_the_limit_off(make_app: MakeApp, engine: Any) -> None:
    api = as_(make_app(rate_limit_per_s=0.0, rate_limit_burst=1), new_key(engine, "alice"))
    assert [api.get("/tasks").status_code for _ in range(5)] == [200] * 5
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_buckets")).scalar_one() == 0


# --- the CLI --------------------------------------------------------------------------------


def run_cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env.update({"TASKER_DATABASE_URL": settings.database_url, "TASKER_DATA_DIR": settings.data_dir,
                "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "cli.main", "clients", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_clients_cli_sets_limits_the_api_enforces(make_app: MakeApp, settings: Any, engine: Any) -> None:
    created = run_cli(settings, "create", "gina", "--quota", "1", "--rate", "50")
    assert created.returncode == 0, created.stderr
    assert "client gina: rate 50 requests/s, burst default (2000, TASKER_RATE_LIMIT_BURST), quota 1 active tasks" in created.stdout
    gina = as_(make_app(), created.stdout.strip().splitlines()[-1])
    assert gina.post("/tasks", json=later(1)).status_code == 201
    assert gina.post("/tasks", json=later(2)).status_code == 429

    changed = run_cli(settings, "limits", "gina", "--quota", "default", "--burst", "5")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == (
        "client gina: rate 50 requests/s, burst 5, quota default (100000 active tasks, TASKER_QUOTA_ACTIVE_TASKS)"
    )
    wait_for(lambda: gina.post("/tasks", json=later(3)).status_code == 201, timeout=10,
             what="the quota override to be dropped")
    shown = run_cli(settings, "limits", "gina")
    assert shown.returncode == 0 and "burst 5," in shown.stdout
    with engine.connect() as conn:
        row = conn.execute(text("SELECT rate_limit_per_s, rate_limit_burst, quota_active_tasks FROM clients "
                                "WHERE name = 'gina'")).one()
    assert tuple(row) == (50.0, 5, None)

    assert run_cli(settings, "limits", "gina", "--burst", "0").returncode == 2
    missing = run_cli(settings, "limits", "nobody", "--rate", "1")
    assert missing.returncode == 1 and "no client named 'nobody'" in missing.stderr
