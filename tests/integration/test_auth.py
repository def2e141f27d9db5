"""API keys and isolation: a client sees and changes only its own work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from db.store import clients
from tests.conftest import authed
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = "Forbidden: Task does not belong to this user"


@pytest.fixture
def keys(engine: Any) -> dict[str, str]:
    with engine.begin() as conn:
        return {name: clients.create(conn, name).key for name in ("alice", "bob")}


def as_(app: Any, key: str) -> Any:
    return authed(app.test_client(), key)


def test_every_endpoint_but_health_needs_a_valid_key(app: Any, engine: Any) -> None:
    anonymous = app.test_client()
    for method, path in [("post", "/process"), ("get", "/get_requests_status"), ("get", "/get_processes_status"),
                         ("post", "/set_processes_status"), ("post", "/tasks"), ("get", "/tasks"), ("get", "/jobs")]:
        response = getattr(anonymous, method)(path, json={})
        assert response.status_code == 401, path
        assert "API key" in response.get_json()["error"]["message"]
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200
    wrong = as_(app, "tk_000000000099_nope").get("/tasks")
    assert wrong.status_code == 401 and "invalid or revoked" in wrong.get_json()["error"]["message"]


def test_a_revoked_key_stops_working(app: Any, engine: Any, keys: dict[str, str]) -> None:
    bob = as_(app, keys["bob"])
    assert bob.get("/tasks").status_code == 200
    with engine.begin() as conn:
        clients.revoke(conn, "bob")
    wait_for(lambda: bob.get("/tasks").status_code == 401, timeout=10, what="the revocation to apply")


def test_another_clients_task_is_forbidden_and_unknown_ids_are_404(app: Any, keys: dict[str, str]) -> None:
    alice, bob = as_(app, keys["alice"]), as_(app, keys["bob"])
    created = alice.post("/tasks", json={"task": "sum2", "params": {"first": 1, "second": 2}, "delay": "1h"})
    task_id = created.get_json()["id"]
    for method, path, body in [
        ("get", f"/tasks/{task_id}", None), ("get", f"/tasks/id/{task_id}", None), ("get", f"/tasks/{task_id}/results", None),
        ("patch", f"/tasks/{task_id}", {"delay": "2h"}), ("delete", f"/tasks/{task_id}", None),
        ("post", f"/tasks/{task_id}/pause", None), ("post", f"/tasks/{task_id}/resume", None),
        ("post", f"/tasks/{task_id}/retry", None),
    ]:
        response = getattr(bob, method)(path, json=body) if body else getattr(bob, method)(path)
        assert response.status_code == 403, (method, path)
        assert response.get_json() == {"error": {"message": FORBIDDEN}}
    outcome = bob.post("/tasks/pause", json={"ids": [task_id]}).get_json()["results"][task_id]
    assert outcome == {"success": False, "error": FORBIDDEN}
    assert bob.get("/tasks/0123456789abcdef0123456789abcdef").status_code == 404
    assert alice.get(f"/tasks/{task_id}").status_code == 200


def test_listings_show_only_the_callers_work(app: Any, keys: dict[str, str], client: Any) -> None:
    alice, bob = as_(app, keys["alice"]), as_(app, keys["bob"])
    mine = alice.post("/tasks", json={"task": "sum2", "params": {"first": 3, "second": 4}, "delay": "1h"}).get_json()["id"]
    rid = alice.post("/process", json={"task": "sum2", "params": {"first": 5, "second": 6}}).get_json()["process"]["rid"]
    assert [t["id"] for t in bob.get("/tasks").get_json()["tasks"]] == []
    assert bob.get("/jobs").get_json() == {"running": {}, "scheduled": {}, "history": {}}
    assert bob.get("/tasks?client=*").status_code == 403
    assert bob.get("/tasks?client_name=alice").status_code == 403
    assert bob.get("/get_requests_status?client_name=alice").status_code == 403
    assert bob.post("/process", json={"task": "sum2", "client_name": "alice", "params": {"first": 1, "second": 1}}).status_code == 403
    assert bob.get("/get_requests_status").get_json()["get_requests_status"]["requests"] == []
    assert {t["id"] for t in alice.get("/tasks").get_json()["tasks"]} == {mine, rid}
    # an admin may see everyone's, or name a client
    assert {mine, rid} <= {t["id"] for t in client.get("/tasks?client=*").get_json()["tasks"]}
    assert {t["id"] for t in client.get("/tasks?client_name=alice").get_json()["tasks"]} == {mine, rid}


def test_only_an_admin_sets_process_statuses(app: Any, keys: dict[str, str], client: Any) -> None:
    bob = as_(app, keys["bob"])
    response = bob.post("/set_processes_status", json={"mult3": "suspended"})
    assert response.status_code == 403 and "admin" in response.get_json()["error"]["message"]
    assert client.post("/set_processes_status", json={"mult3": "active"}).status_code == 200


def run_cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env.update({"TASKER_DATABASE_URL": settings.database_url, "TASKER_DATA_DIR": settings.data_dir, "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "cli.main", "clients", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_clients_cli_creates_lists_rotates_and_revokes_keys(app: Any, settings: Any) -> None:
    created = run_cli(settings, "create", "carol")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("tk_")
    assert as_(app, key).get("/tasks").status_code == 200
    listed = run_cli(settings, "list")
    assert "carol\tclient\tactive" in listed.stdout
    rotated = run_cli(settings, "rotate", "carol")
    new_key = rotated.stdout.strip().splitlines()[-1]
    assert new_key.startswith("tk_") and new_key != key
    assert as_(app, new_key).get("/tasks").status_code == 200
    wait_for(lambda: as_(app, key).get("/tasks").status_code == 401, timeout=10, what="the old key to stop working")
    assert run_cli(settings, "revoke", "carol").returncode == 0
    wait_for(lambda: as_(app, new_key).get("/tasks").status_code == 401, timeout=10, what="the revocation")
    assert "carol\tclient\trevoked" in run_cli(settings, "list").stdout
    again = run_cli(settings, "create", "carol")
    assert again.returncode == 1 and "rotate" in again.stderr
