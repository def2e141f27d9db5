"""The seed endpoints end to end: API -> PostgreSQL -> SQS -> tasker -> PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.support.wait import wait_for


def submit(client: Any, task: str, params: dict[str, Any], name: str = "sh", **extra: Any) -> Any:
    response = client.post("/process", json={"task": task, "client_name": name, "params": params, **extra})
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)
    return response.get_json()["process"]


def requests_of(client: Any, name: str = "sh", **query: Any) -> dict[str, Any]:
    response = client.get("/get_requests_status", json={"client_name": name, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["get_requests_status"]


def request_by_rid(client: Any, rid: str, name: str = "sh") -> dict[str, Any]:
    return next(r for r in requests_of(client, name, limit=500)["requests"] if r["rid"] == rid)


def completed(client: Any, rid: str, name: str = "sh") -> Any:
    item = request_by_rid(client, rid, name)
    return item if item["status"] in ("completed", "failed") else None


def test_each_builtin_task_runs_and_records_its_result(client: Any, threads: Any) -> None:
    threads.worker()
    jobs = {
        "sum2": ({"first": 1, "second": 2}, 3),
        "mult3": ({"first": 2, "second": 3, "third": 4}, 24),
        "surprise": ({"first": 3}, "Up above the world so high,"),
    }
    rids = {}
    for task, (params, _) in jobs.items():
        answer = submit(client, task, params)
        assert answer["success"] is True and answer["cached"] is False
        assert len(answer["rid"]) == 32 and int(answer["rid"], 16) >= 0
        assert answer["status"] == "queued"
        rids[task] = answer["rid"]
    for task, (_, expected) in jobs.items():
        item = wait_for(lambda t=task: completed(client, rids[t]), what=f"{task} to finish")
        assert item["status"] == "completed"
        assert item["result"] == expected
        assert item["attempts"] == 1


def test_same_task_and_params_is_served_from_the_cache_without_enqueueing(client: Any, threads: Any, engine: Any) -> None:
    threads.worker()
    first = submit(client, "sum2", {"first": 40, "second": 2})
    wait_for(lambda: completed(client, first["rid"]), what="the first request")
    with engine.connect() as conn:
        runs_before = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
    response = client.post("/process", json={"task": "sum2", "client_name": "other", "params": {"second": 2, "first": 40}})
    assert response.status_code == 200
    answer = response.get_json()["process"]
    assert answer == {"rid": answer["rid"], "cached": True, "success": True, "status": "completed", "result": 42}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar_one() == runs_before
    listed = requests_of(client, "other")["requests"]
    assert [(r["rid"], r["cached"], r["result"]) for r in listed] == [(answer["rid"], True, 42)]


def test_requests_status_lists_newest_first_and_pages_with_a_cursor(client: Any) -> None:
    rids = [submit(client, "sum2", {"first": i, "second": 0}, name="pager")["rid"] for i in range(7)]
    submit(client, "sum2", {"first": 1, "second": 1}, name="someone-else")
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 3}
        if cursor:
            query["cursor"] = cursor
        page = requests_of(client, "pager", **query)
        assert page["success"] is True
        seen += [r["rid"] for r in page["requests"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(rids))
    # the query-string form is accepted too
    response = client.get("/get_requests_status?client_name=pager&limit=2")
    assert [r["rid"] for r in response.get_json()["get_requests_status"]["requests"]] == seen[:2]
    item = requests_of(client, "pager")["requests"][0]
    assert set(item) >= {"rid", "task", "params", "status", "cached", "created_at", "updated_at", "finished_at"}


def test_unknown_client_has_no_requests(client: Any) -> None:
    assert requests_of(client, "nobody")["requests"] == []


def test_processes_status_reports_each_type_with_counts(client: Any, threads: Any) -> None:
    threads.worker()
    response = client.get("/get_processes_status")
    assert response.status_code == 200
    processes = response.get_json()["get_processes_status"]["processes"]
    assert {"sum2", "mult3", "surprise"} <= set(processes)
    entry = wait_for(lambda: (e := client.get("/get_processes_status").get_json()["get_processes_status"]["processes"]["sum2"])["workers"] >= 1 and e,
                     what="the tasker heartbeat")
    assert entry["status"] == "active"
    assert entry["queue_depth"] == 0
    assert {"reason", "since", "backlog", "dispatched", "in_flight"} <= set(entry)


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "sqs": "ok"}
