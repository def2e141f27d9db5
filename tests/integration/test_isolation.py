"""Isolation and redaction: another client's key reaches none of a client's work through any
endpoint of the app, and credentials never show in answers, attempt records or logs."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from core.logs import JsonFormatter
from core.statuses import TASK_STATES, WORKFLOW_STATES
from db.store import clients
from tests.conftest import authed
from tests.support.wait import wait_for

FORBIDDEN = "Forbidden: Task does not belong to this user"
UNKNOWN = "0123456789abcdef0123456789abcdef"
#: rules anyone may call without a key
PUBLIC = ("/healthz", "/readyz", "/openapi.json", "/static")
#: distinctive strings of alice's work: none may ever reach bob
MARKER = "zq-marker-5c1e9b"
AUTHORIZATION = "Bearer alice-top-secret-7d41f0c2"
API_KEY_HEADER = "alice-api-key-value-91e3"
AUTH_TOKEN = "alice-auth-token-0b6d22"
URL_PASSWORD = "alice-url-pw-4a7f"


@dataclasses.dataclass
class World:
    alice: Any
    bob: Any
    keys: dict[str, str]
    signing_secret: str
    #: alice's tasks: http (scheduled), builtin (scheduled), process, paused, failed, echoed
    ids: dict[str, str]
    #: JSON log lines written while alice's work was created and run
    logs: str
    #: alice's workflow (scheduled an hour ahead)
    workflow: str = ""

    def secrets(self) -> list[str]:
        return [AUTHORIZATION, AUTHORIZATION.split()[1], API_KEY_HEADER, AUTH_TOKEN, URL_PASSWORD,
                self.keys["alice"], self.signing_secret]


def as_(app: Any, key: str) -> Any:
    return authed(app.test_client(), key)


def task_of(client: Any, task_id: str) -> dict[str, Any]:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def finished(client: Any, task_id: str) -> dict[str, Any] | None:
    task = task_of(client, task_id)
    return task if task["status"] in ("completed", "failed") else None


def created(response: Any) -> str:
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)
    body = response.get_json()
    return body["id"] if "id" in body else body["process"]["rid"]  # type: ignore[no-any-return]


@pytest.fixture
def world(app: Any, engine: Any, threads: Any, target: Any) -> Iterator[World]:
    with engine.begin() as conn:
        issued = {name: clients.create(conn, name) for name in ("alice", "bob")}
    keys = {name: i.key for name, i in issued.items()}
    alice, bob = as_(app, keys["alice"]), as_(app, keys["bob"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        threads.worker()
        port = target.url.rsplit(":", 1)[1]
        ids = {
            # run now against a target that echoes the request back: 404 is final, so it fails
            "failed": created(alice.post("/tasks", json={
                "url": f"{target.url}/echo/404?m={MARKER}", "method": "POST", "retries": 0,
                "headers": {"Authorization": AUTHORIZATION, "X-Api-Key": API_KEY_HEADER, "X-Marker": MARKER},
                "body": {"marker": MARKER}})),
            # credentials in the URL (sent as Basic auth) and in a custom token header
            "echoed": created(alice.post("/tasks", json={
                "url": f"http://alice:{URL_PASSWORD}@127.0.0.1:{port}/echo?m={MARKER}",
                "headers": {"X-Auth-Token": AUTH_TOKEN}})),
            "http": created(alice.post("/tasks", json={
                "url": f"{target.url}/echo?m={MARKER}", "delay": "1h",
                "headers": {"Authorization": AUTHORIZATION, "X-Marker": MARKER}, "post_data": {"marker": MARKER}})),
            "builtin": created(alice.post("/tasks", json={
                "task": "sum2", "params": {"first": 1, "second": 2}, "delay": "1h"})),
            "process": created(alice.post("/process", json={"task": "sum2", "params": {"first": 20, "second": 22}})),
            "paused": created(alice.post("/tasks", json={
                "task": "mult3", "params": {"first": 1, "second": 2, "third": 3}, "delay": "1h"})),
        }
        assert alice.post(f"/tasks/{ids['paused']}/pause").status_code == 200
        for name in ("failed", "echoed", "process"):
            wait_for(lambda n=name: finished(alice, ids[n]), what=f"alice's {name} task to finish")  # type: ignore[misc]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert task_of(alice, ids["failed"])["status"] == "failed"
    assert task_of(alice, ids["echoed"])["status"] == "completed"
    workflow = created(alice.post("/workflows", json={
        "steps": [{"url": f"{target.url}/echo?m={MARKER}", "headers": {"Authorization": AUTHORIZATION}}],
        "initial_delay": "1h"}))
    yield World(alice, bob, keys, issued["alice"].signing_secret, ids, stream.getvalue(), workflow)


def _snapshot(engine: Any, ids: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        tasks = conn.execute(text(
            "SELECT id, status, params::text, schedule::text, run_count, next_run_at, updated_at, result::text, error "
            "FROM tasks WHERE id = ANY(:ids)"), {"ids": ids}).all()
        events = conn.execute(text("SELECT count(*) FROM task_events WHERE task_id = ANY(:ids)"), {"ids": ids}).scalar_one()
        runs = conn.execute(text("SELECT count(*) FROM runs WHERE task_id = ANY(:ids)"), {"ids": ids}).scalar_one()
    return {"tasks": {r.id: tuple(r) for r in tasks}, "events": events, "runs": runs}


Check = Callable[[Any], None]


def status(code: int) -> Check:
    def check(response: Any) -> None:
        assert response.status_code == code, response.get_data(as_text=True)
    return check


def forbidden_task(response: Any) -> None:
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.get_json() == {"error": {"message": FORBIDDEN}}


def forbidden_workflow(response: Any) -> None:
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.get_json() == {"error": {"message": "Forbidden: Workflow does not belong to this user"}}


def only_bobs_workflows(response: Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert all(w["client_name"] == "bob" for w in response.get_json()["workflows"])


def only_bobs(key: str) -> Check:
    """A 200 listing whose every task (under ``key``) is bob's own."""
    def check(response: Any) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        tasks = body["tasks"] if key == "tasks" else [t for group in body.values() for t in group.values()]
        assert all(t["client_name"] == "bob" for t in tasks)
    return check


def public_processes(response: Any) -> None:
    assert response.status_code == 200
    processes = response.get_json()["get_processes_status"]["processes"]
    assert processes and all(set(entry) == {"status", "since"} for entry in processes.values())


def bulk_refused(ids: list[str]) -> Check:
    def check(response: Any) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        results = response.get_json()["results"]
        assert {i: results[i] for i in ids} == {i: {"success": False, "error": FORBIDDEN} for i in ids}
        assert results[UNKNOWN]["success"] is False and "no task" in results[UNKNOWN]["error"]
    return check


def _matrix(world: World) -> list[tuple[str, str, Any, Check]]:
    """(method, path, JSON body, check) for every endpoint, called with bob's key."""
    alices = list(world.ids.values())
    calls: list[tuple[str, str, Any, Check]] = []
    per_task = [("GET", "/tasks/{}", None), ("GET", "/tasks/id/{}", None), ("GET", "/tasks/{}/results", None),
                ("PATCH", "/tasks/{}", {"delay": "2h"}), ("DELETE", "/tasks/{}", None),
                ("POST", "/tasks/{}/pause", None), ("POST", "/tasks/{}/resume", None), ("POST", "/tasks/{}/retry", None)]
    for method, pattern, body in per_task:
        calls += [(method, pattern.format(task_id), body, forbidden_task) for task_id in alices]
        calls.append((method, pattern.format(UNKNOWN), body, status(404)))
    for action in ("pause", "resume"):
        calls.append(("POST", f"/tasks/{action}", {"ids": [*alices, UNKNOWN]}, bulk_refused(alices)))
    calls += [("GET", f"/tasks?state={state}", None, only_bobs("tasks")) for state in [*TASK_STATES, "all"]]
    calls += [
        ("GET", "/tasks", None, only_bobs("tasks")),
        ("GET", "/tasks?client=*", None, status(403)),
        ("GET", "/tasks?client=alice", None, status(403)),
        ("GET", "/tasks?client_name=alice", None, status(403)),
        ("GET", "/jobs", None, only_bobs("jobs")),
        ("GET", "/jobs?client=*", None, status(403)),
        ("GET", "/jobs?client=alice", None, status(403)),
        ("GET", "/", None, status(302)),
        ("GET", "/get_requests_status", None, status(200)),
        ("GET", "/get_requests_status?client_name=alice", None, status(403)),
        ("GET", "/get_requests_status", {"client_name": "alice"}, status(403)),
        ("POST", "/process", {"task": "sum2", "client_name": "alice", "params": {"first": 1, "second": 1}}, status(403)),
        ("POST", "/tasks", {"task": "sum2", "client_name": "alice", "params": {"first": 1, "second": 1}, "delay": "1h"},
         status(403)),
        ("POST", "/tasks/batch", {"tasks": [{"task": "sum2", "client_name": "alice", "params": {"first": 1, "second": 1},
                                             "delay": "1h"}]}, status(403)),
        ("POST", "/set_processes_status", {"sum2": "suspended"}, status(403)),
        ("GET", "/get_processes_status", None, public_processes),
        ("GET", f"/workflows/{world.workflow}", None, forbidden_workflow),
        ("DELETE", f"/workflows/{world.workflow}", None, forbidden_workflow),
        ("GET", f"/workflows/{UNKNOWN}", None, status(404)),
        ("DELETE", f"/workflows/{UNKNOWN}", None, status(404)),
        ("GET", "/workflows?client=*", None, status(403)),
        ("GET", "/workflows?client=alice", None, status(403)),
        ("POST", "/workflows", {"client_name": "alice", "steps": [{"task": "sum2", "params": {"first": 1, "second": 1}}],
                                "initial_delay": "1h"}, status(403)),
    ]
    calls += [("GET", f"/workflows?state={state}", None, only_bobs_workflows) for state in [*WORKFLOW_STATES, "all"]]
    return calls


def _bob_saw(response: Any, body: Any) -> str:
    """What bob learnt from an answer: its body and Location; a bulk answer minus the ids he
    named himself."""
    seen: str = response.get_data(as_text=True)
    if isinstance(body, dict) and "ids" in body and response.status_code == 200:
        seen = json.dumps(list(response.get_json()["results"].values()))
    return seen + str(response.headers.get("Location", ""))


def test_another_clients_key_reaches_none_of_her_work_through_any_endpoint(
    app: Any, engine: Any, world: World
) -> None:
    before = _snapshot(engine, list(world.ids.values()))
    adapter = app.url_map.bind("localhost")
    covered: set[tuple[str, str]] = set()
    seen: list[tuple[str, str, str]] = []
    for method, path, body, check in _matrix(world):
        rule, _ = adapter.match(path.split("?", 1)[0], method=method, return_rule=True)
        covered.add((rule.rule, method))
        response = world.bob.open(path, method=method, json=body)
        check(response)
        seen.append((method, path, _bob_saw(response, body)))
        if method == "GET":  # HEAD runs the same view
            assert world.bob.open(path, method="HEAD", json=body).status_code == response.status_code, path

    every = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods or ()
             if method not in ("HEAD", "OPTIONS") and not rule.rule.startswith(PUBLIC)}
    assert every - covered == set(), "endpoints without an entry in the isolation matrix"

    leaks = [*world.ids.values(), world.workflow, MARKER, *world.secrets()]
    for method, path, answer in seen:
        assert not [s for s in leaks if s in answer], f"{method} {path} showed bob alice's data: {answer}"
    assert _snapshot(engine, list(world.ids.values())) == before
    for task_id, (_, state, *_rest) in before["tasks"].items():
        assert task_of(world.alice, task_id)["status"] == state
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM processes WHERE task_type = 'sum2'")).scalar_one() == "active"
        assert conn.execute(text("SELECT status FROM workflows")).scalars().all() == ["scheduled"]


def test_credentials_never_show_in_answers_attempt_records_or_logs(
    app: Any, engine: Any, world: World, target: Any, client: Any
) -> None:
    secrets = world.secrets()
    ids = world.ids
    # the target really got them: stored params stay real and the tasker sends them
    [echo] = target.arrivals_for("/echo/404")
    assert echo.headers["Authorization"] == AUTHORIZATION and echo.headers["X-Api-Key"] == API_KEY_HEADER
    [basic] = target.arrivals_for("/echo?")
    assert basic.headers["X-Auth-Token"] == AUTH_TOKEN and basic.headers["Authorization"].startswith("Basic ")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT params FROM tasks WHERE id = :id"), {"id": ids["http"]}).scalar_one()
        attempts = conn.execute(text(
            "SELECT response_excerpt, error FROM attempts WHERE task_id = ANY(:ids)"),
            {"ids": [ids["failed"], ids["echoed"]]}).all()
        records = conn.execute(text(
            "SELECT coalesce(result::text, '') || coalesce(error, '') FROM tasks WHERE id = ANY(:ids) "
            "UNION ALL SELECT coalesce(result::text, '') || coalesce(error, '') FROM runs WHERE task_id = ANY(:ids)"),
            {"ids": [ids["failed"], ids["echoed"]]}).scalars().all()
    assert stored["headers"]["Authorization"] == AUTHORIZATION
    # the attempt records hold the echo, with every credential scrubbed
    assert len(attempts) == 2 and all("[redacted]" in (excerpt or "") for excerpt, _ in attempts)
    assert any(MARKER in (excerpt or "") for excerpt, _ in attempts)
    for text_ in [*(e or "" for e, _ in attempts), *(e or "" for _, e in attempts), *records]:
        assert not [s for s in secrets if s in text_], text_
    assert not [s for s in secrets if s in basic.headers["Authorization"] + "".join(records)]

    # alice's own answers (and an admin's) show her credentials as [redacted]
    shown = task_of(world.alice, ids["http"])
    assert shown["params"]["headers"] == {"Authorization": "[redacted]", "X-Marker": MARKER}
    assert task_of(world.alice, ids["echoed"])["params"]["url"].startswith("http://alice:[redacted]@127.0.0.1:")
    answers = [world.alice.get(path).get_data(as_text=True) for path in (
        *(f"/tasks/{i}" for i in ids.values()), *(f"/tasks/{i}/results" for i in ids.values()),
        "/tasks", "/tasks?state=all&limit=500", "/jobs", "/get_requests_status?limit=500")]
    answers += [client.get(path).get_data(as_text=True) for path in ("/tasks?client=*", "/jobs?client=*")]
    for answer in answers:
        assert not [s for s in secrets if s in answer], answer
    assert MARKER in answers[0]  # the rest of the spec is shown as it is

    # nor in the log lines written while it all ran (which did capture the work)
    assert ids["failed"] in world.logs and "run failed" in world.logs
    assert not [s for s in secrets if s in world.logs]


def test_a_patch_keeps_the_stored_credentials_unless_it_gives_new_ones(
    app: Any, engine: Any, world: World, target: Any
) -> None:
    def stored(task_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            return conn.execute(  # type: ignore[no-any-return]
                text("SELECT params FROM tasks WHERE id = :id"), {"id": task_id}).scalar_one()

    alice, task_id = world.alice, world.ids["http"]
    # only the URL: the stored headers stay (the answer shows them redacted)
    response = alice.patch(f"/tasks/{task_id}", json={"url": f"{target.url}/ok?m={MARKER}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["params"]["headers"]["Authorization"] == "[redacted]"
    assert stored(task_id)["headers"] == {"Authorization": AUTHORIZATION, "X-Marker": MARKER}
    assert stored(task_id)["url"] == f"{target.url}/ok?m={MARKER}"
    # the spec as shown sent back whole: the redacted values keep their stored ones
    shown = task_of(alice, task_id)["params"]
    fields = {k: shown[k] for k in ("url", "method", "headers", "body", "timeout_s")}
    fields["headers"] = {**fields["headers"], "X-Extra": "1"}
    assert alice.patch(f"/tasks/{task_id}", json=fields).status_code == 200
    assert stored(task_id)["headers"] == {"Authorization": AUTHORIZATION, "X-Marker": MARKER, "X-Extra": "1"}
    # new values replace the stored ones
    response = alice.patch(f"/tasks/{task_id}", json={"headers": {"Authorization": "Bearer new-token-123"}})
    assert response.status_code == 200
    assert stored(task_id)["headers"] == {"Authorization": "Bearer new-token-123"}

    # a URL password shown redacted and sent back stays the stored one
    port = target.url.rsplit(":", 1)[1]
    url = f"http://alice:{URL_PASSWORD}@127.0.0.1:{port}/echo"
    task_id = created(alice.post("/tasks", json={"url": url, "delay": "1h"}))
    shown_url = task_of(alice, task_id)["params"]["url"]
    assert shown_url == f"http://alice:[redacted]@127.0.0.1:{port}/echo"
    assert alice.patch(f"/tasks/{task_id}", json={"url": shown_url, "delay": "2h"}).status_code == 200
    assert stored(task_id)["url"] == url


def test_process_status_details_are_for_admin_keys(app: Any, engine: Any, client: Any) -> None:
    with engine.begin() as conn:
        key = clients.create(conn, "carol").key
    public = as_(app, key).get("/get_processes_status").get_json()["get_processes_status"]["processes"]
    full = client.get("/get_processes_status").get_json()["get_processes_status"]["processes"]
    assert set(public) == set(full)
    for task_type, entry in public.items():
        assert entry == {"status": full[task_type]["status"], "since": full[task_type]["since"]}
        assert {"reason", "backlog", "dispatched", "in_flight", "workers", "queue_depth"} <= set(full[task_type])
