"""The /tasks resource: scheduled, periodic, paused, resumed and cancelled tasks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from sqlalchemy import text

from core.settings import Settings
from core.sqs import Transport
from tests.support.wait import wait_for


def create(client: Any, body: dict[str, Any]) -> str:
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.get_json()
    task_id = response.get_json()["id"]
    assert response.headers["Location"] == f"/tasks/{task_id}"
    return str(task_id)


def task(client: Any, task_id: str) -> dict[str, Any]:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def finished(client: Any, task_id: str) -> Any:
    t = task(client, task_id)
    return t if t["status"] in ("completed", "failed", "cancelled") else None


def test_one_time_task_due_in_20_minutes_is_stored_not_put_on_sqs(
    client: Any, threads: Any, settings: Settings, engine: Any
) -> None:
    threads.controller()
    task_id = create(client, {"task": "sum2", "params": {"first": 1, "second": 2}, "delay": "20m"})
    t = task(client, task_id)
    assert t["status"] == "scheduled"
    due = dt.datetime.fromisoformat(t["next_run_datetime"].replace("Z", "+00:00"))
    assert 19 * 60 < (due - dt.datetime.now(dt.UTC)).total_seconds() <= 20 * 60
    time.sleep(1.0)  # several controller passes
    assert Transport(settings).depth("sum2") == {"visible": 0, "in_flight": 0, "delayed": 0}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM runs WHERE task_id = :id"), {"id": task_id}).scalar_one() == "pending"


def test_delayed_http_task_fires_at_its_time(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    before = time.time()
    task_id = create(client, {"url": target.url + "/ok", "delay": 1.5})
    assert wait_for(lambda: finished(client, task_id), what="the delayed call")["status"] == "completed"
    [arrival] = target.arrivals_for("/ok")
    assert arrival.at - before >= 1.5


def test_periodic_task_with_max_runs_fires_that_many_times_then_completes(
    client: Any, threads: Any, target: Any
) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"task_type": "periodic", "frequency": 1, "url": target.url + "/ok?p", "max_runs": 3})
    t = wait_for(lambda: finished(client, task_id), timeout=30, what="three fires")
    assert t["status"] == "completed" and t["run_count"] == 3
    time.sleep(1.5)
    arrivals = target.arrivals_for("/ok?p")
    assert len(arrivals) == 3
    gaps = [b.at - a.at for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert all(0.8 < g < 1.2 for g in gaps), gaps


def test_periodic_task_with_an_end_stops(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2.5)).isoformat()
    task_id = create(client, {"url": target.url + "/ok?e", "interval": 1, "end_at": end})
    assert wait_for(lambda: finished(client, task_id), timeout=30, what="the end")["status"] == "completed"
    time.sleep(1.5)
    assert len(target.arrivals_for("/ok?e")) == 3  # at 0, 1 and 2 seconds


def test_paused_task_never_fires_until_resumed(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/ok?pause", "delay": 1})
    assert client.post(f"/tasks/{task_id}/pause").get_json()["status"] == "paused"
    assert client.post(f"/tasks/{task_id}/pause").status_code == 409
    time.sleep(2.5)
    assert target.arrivals_for("/ok?pause") == []
    assert task(client, task_id)["status"] == "paused"
    assert client.post(f"/tasks/{task_id}/resume").status_code == 200
    assert wait_for(lambda: finished(client, task_id), what="the resumed task")["status"] == "completed"
    assert len(target.arrivals_for("/ok?pause")) == 1


def test_cancel_after_dispatch_never_reaches_the_target(client: Any, threads: Any, target: Any, engine: Any) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/ok?cancel", "delay": 1.8})

    def sent() -> bool:
        with engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM runs WHERE task_id = :id"), {"id": task_id}).scalar_one()
        return status in ("dispatched", "running")

    wait_for(sent, what="the run to be sent ahead of its time")
    response = client.delete(f"/tasks/{task_id}")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    time.sleep(3)
    assert target.arrivals_for("/ok?cancel") == []
    assert task(client, task_id)["status"] == "cancelled"
    assert client.delete(f"/tasks/{task_id}").status_code == 409


def test_results_start_with_the_schedule_note_then_every_attempt(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/fail/1/r", "retries": 2, "retry_base_s": 0.1})
    wait_for(lambda: finished(client, task_id), what="the retried call")
    history = client.get(f"/tasks/{task_id}/results").get_json()["history"]
    assert history[0]["type"] == "event" and history[0]["kind"] == "scheduled"
    tries = [(h["attempt"], h["kind"], h["status_code"]) for h in history if h["type"] == "attempt"]
    assert tries == [(1, "failed", 503), (2, "succeeded", 200)]
    assert all(h["time"] for h in history)


def test_list_filters_by_state_and_pages(client: Any) -> None:
    ids = [create(client, {"task": "sum2", "params": {"first": i, "second": 0}, "delay": "1h", "client_name": "lister"})
           for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/tasks?state=scheduled&limit=2&client_name=lister" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).get_json()
        assert page["count"] == 5
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert client.get("/tasks?state=paused&client_name=lister").get_json()["count"] == 0
    assert client.get("/tasks?state=bogus").status_code == 400
    assert client.get("/tasks/id/" + ids[0]).get_json()["id"] == ids[0]
    assert client.get("/tasks/nope").status_code == 404


def test_two_controllers_fire_each_periodic_tick_once(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/ok?two", "interval": 1, "max_runs": 4})
    wait_for(lambda: finished(client, task_id), timeout=30, what="four fires")
    time.sleep(1.5)
    arrivals = target.arrivals_for("/ok?two")
    assert len(arrivals) == 4
    assert len({a.headers["Tasker-Run-Id"] for a in arrivals}) == 4


def test_periodic_task_missed_while_the_controller_was_down_fires_once_for_the_window(
    client: Any, threads: Any, target: Any, settings: Settings
) -> None:
    threads.settings = dataclasses.replace(settings, misfire_grace_s=0.5)
    worker = threads.worker()
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)).isoformat()
    task_id = create(client, {"url": target.url + "/ok?mis", "interval": 1, "start_at": start})
    time.sleep(4.5)  # no controller: four ticks pass unsent
    assert target.arrivals_for("/ok?mis") == []
    controller = threads.controller()
    wait_for(lambda: len(target.arrivals_for("/ok?mis")) >= 1, what="the catch-up fire")
    time.sleep(0.6)
    assert len(target.arrivals_for("/ok?mis")) == 1  # once for the missed window, not four times
    wait_for(lambda: len(target.arrivals_for("/ok?mis")) >= 2, what="the next regular fire")
    client.delete(f"/tasks/{task_id}")
    assert worker and controller


def test_bad_task_specs_get_400(client: Any) -> None:
    for body, needle in [
        ({"task": "sum2", "params": {"first": 1, "second": 2}, "interval": 0.1}, "'interval'"),
        ({"url": "http://example.com", "cron": "61 * * * *"}, "cron minute"),
        ({"url": "http://example.com", "run_at": "yesterday"}, "'run_at'"),
        ({"url": "http://example.com", "timezone": "Mars/Olympus"}, "'timezone'"),
        ({"task_type": "periodic", "url": "http://example.com"}, "periodic task needs"),
        ({"params": {}}, "give 'url'"),
    ]:
        response = client.post("/tasks", json=body)
        assert response.status_code == 400, body
        assert needle in response.get_json()["error"]["message"], (body, response.get_json())
    batch = client.post("/tasks/batch", json={"tasks": [{"url": "http://example.com"}, {"url": "nope"}]})
    assert batch.status_code == 400 and "tasks[1]" in batch.get_json()["error"]["message"]


def test_patch_moves_the_fire_time_and_changes_the_target(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/ok?old", "delay": "1h"})
    response = client.patch(f"/tasks/{task_id}", json={"delay": 1, "url": target.url + "/ok?new", "post_data": {"x": 1}})
    assert response.status_code == 200, response.get_json()
    moved = response.get_json()
    due = dt.datetime.fromisoformat(moved["next_run_datetime"].replace("Z", "+00:00"))
    assert (due - dt.datetime.now(dt.UTC)).total_seconds() < 2
    assert wait_for(lambda: finished(client, task_id), what="the moved task")["status"] == "completed"
    assert target.arrivals_for("/ok?old") == []
    [arrival] = target.arrivals_for("/ok?new")
    assert arrival.method == "POST" and arrival.body == b'{"x": 1}'
    assert client.patch(f"/tasks/{task_id}", json={"delay": 5}).status_code == 409


def test_a_failed_task_can_be_run_again(client: Any, threads: Any, target: Any) -> None:
    threads.controller()
    threads.worker()
    task_id = create(client, {"url": target.url + "/fail/1/again", "retries": 0})
    assert wait_for(lambda: finished(client, task_id), what="the failure")["status"] == "failed"
    assert client.post(f"/tasks/{task_id}/retry").status_code == 202
    assert wait_for(lambda: finished(client, task_id), what="the second run")["status"] == "completed"
    assert client.post(f"/tasks/{task_id}/retry").status_code == 409


def test_jobs_groups_tasks_and_root_redirects_there(client: Any) -> None:
    later = create(client, {"task": "sum2", "params": {"first": 1, "second": 1}, "delay": "1h"})
    body = client.get("/jobs").get_json()
    assert set(body) == {"running", "scheduled", "history"}
    assert later in body["scheduled"]
    root = client.get("/")
    assert root.status_code == 302 and root.headers["Location"].endswith("/jobs")


def test_bulk_pause_and_resume_report_an_outcome_per_id(client: Any) -> None:
    a = create(client, {"task": "sum2", "params": {"first": 1, "second": 1}, "delay": "1h"})
    b = create(client, {"task": "sum2", "params": {"first": 2, "second": 1}, "delay": "1h"})
    paused = client.post("/tasks/pause", json={"ids": [a, b, "missing"]}).get_json()["results"]
    assert paused[a]["success"] and paused[b]["success"] and not paused["missing"]["success"]
    resumed = client.post("/tasks/resume", json={"ids": [a]}).get_json()["results"]
    assert resumed[a]["success"] and task(client, a)["status"] == "scheduled"
    assert task(client, b)["status"] == "paused"


def test_cron_task_in_a_dst_zone_gets_its_next_fire_in_utc(client: Any) -> None:
    task_id = create(client, {"url": "http://example.com/x", "cron": "30 2 * * *", "timezone": "America/New_York",
                              "start_at": "2026-03-07T12:00:00Z"})
    t = task(client, task_id)
    # next fire from 2026-03-07 12:00 UTC is 02:30 EST on the 8th... which does not exist that day:
    assert t["schedule"]["cron"] == "30 2 * * *"
    assert t["next_run_datetime"] == "2026-03-08T07:30:00.000Z"
