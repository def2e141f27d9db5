"""HTTP tasks: the call, its headers, retries and their classification, every attempt recorded."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from tests.conftest import authed
from tests.integration.test_process_flow import completed, submit
from tests.support.wait import wait_for


def attempts(engine: Any, rid: str) -> list[tuple[int, str, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT attempt, outcome, http_status FROM attempts WHERE task_id = :id ORDER BY attempt"), {"id": rid}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_http_task_calls_the_target_with_tasker_headers_and_records_the_response(
    client: Any, threads: Any, target: Any, engine: Any
) -> None:
    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/ok", "method": "POST", "body": {"a": 1},
                                  "headers": {"X-Custom": "yes"}})["rid"]
    item = wait_for(lambda: completed(client, rid), what="the call")
    assert item["status"] == "completed"
    assert item["result"]["status_code"] == 200
    assert json.loads(item["result"]["body"]) == {"ok": True}
    assert item["result"]["headers"]["content-type"] == "application/json"
    [arrival] = target.arrivals_for("/ok")
    assert arrival.method == "POST" and json.loads(arrival.body) == {"a": 1}
    h = {k.lower(): v for k, v in arrival.headers.items()}
    assert h["user-agent"].startswith("Tasker/")
    assert h["tasker-task-id"] == rid and h["tasker-attempt"] == "1"
    assert h["idempotency-key"] == h["tasker-run-id"] and len(h["tasker-run-id"]) == 32
    assert h["x-custom"] == "yes" and h["content-type"] == "application/json"
    assert attempts(engine, rid) == [(1, "succeeded", 200)]


def test_http_task_retries_5xx_then_succeeds_with_one_idempotency_key(
    client: Any, threads: Any, target: Any, engine: Any
) -> None:
    threads.worker()
    threads.controller()
    rid = submit(client, "http", {"url": target.url + "/fail/2/a"}, retries=3)["rid"]
    item = wait_for(lambda: completed(client, rid), what="retries")
    assert item["status"] == "completed" and item["attempts"] == 3
    assert attempts(engine, rid) == [(1, "failed", 503), (2, "failed", 503), (3, "succeeded", 200)]
    arrivals = target.arrivals_for("/fail/2/a")
    assert [a.headers["Tasker-Attempt"] for a in arrivals] == ["1", "2", "3"]
    assert len({a.headers["Idempotency-Key"] for a in arrivals}) == 1


def test_http_4xx_is_final_and_not_retried(client: Any, threads: Any, target: Any, engine: Any) -> None:
    threads.worker()
    threads.controller()
    rid = submit(client, "http", {"url": target.url + "/status/404"}, retries=3)["rid"]
    item = wait_for(lambda: completed(client, rid), what="the final failure")
    assert item["status"] == "failed" and item["error"] == "HTTP 404"
    assert attempts(engine, rid) == [(1, "failed", 404)]


def test_http_success_codes_widen_what_counts_as_success(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/status/404", "success_codes": [404]})["rid"]
    assert wait_for(lambda: completed(client, rid), what="the call")["status"] == "completed"


def test_http_timeout_is_recorded_as_a_failed_attempt(client: Any, threads: Any, target: Any, engine: Any) -> None:
    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/slow/3000", "timeout_s": 0.3}, retries=0)["rid"]
    item = wait_for(lambda: completed(client, rid), what="the timeout")
    assert item["status"] == "failed" and "timed out" in item["error"]
    assert attempts(engine, rid) == [(1, "failed", None)]


def test_http_429_retry_after_is_honoured(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    threads.controller()
    rid = submit(client, "http", {"url": target.url + "/ratelimit/k"}, retries=2)["rid"]
    assert wait_for(lambda: completed(client, rid), what="the retry")["status"] == "completed"
    first, second = target.arrivals_for("/ratelimit/k")
    assert second.at - first.at >= 0.95


def test_one_tasker_keeps_at_least_100_http_calls_in_flight(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    rids = [submit(client, "http", {"url": target.url + f"/slow/1500?i={i}"})["rid"] for i in range(150)]
    for rid in rids:
        wait_for(lambda r=rid: completed(client, r), timeout=60, what="the slow calls")
    assert target.max_in_flight >= 100


def test_bad_http_specs_are_refused_with_400(client: Any) -> None:
    cases = [
        ({"url": "ftp://example.com/x"}, "http:// or https://"),
        ({"url": "/relative"}, "http:// or https://"),
        ({"url": "http://example.com", "method": "BREW"}, "'method'"),
        ({"url": "http://example.com", "body": {"a": 1}}, "cannot carry a body"),
        ({"url": "http://example.com", "headers": {"Idempotency-Key": "x"}}, "set by Tasker"),
        ({"url": "http://example.com", "timeout_s": 0}, "'timeout_s'"),
        ({"url": "http://example.com", "colour": 1}, "unknown param 'colour'"),
        ({"url": "http://example.com", "body": 1, "post_data": 2, "method": "POST"}, "not both"),
    ]
    for params, needle in cases:
        response = client.post("/process", json={"task": "http", "client_name": "sh", "params": params})
        assert response.status_code == 400, params
        assert needle in response.get_json()["error"]["message"], (params, response.get_json())


def test_http_timeout_is_capped_by_the_operator_setting(settings: Any, engine: Any) -> None:
    import dataclasses

    from api.app import create_app
    from core import httpspec

    try:
        client = authed(create_app(dataclasses.replace(settings, http_timeout_max_s=10), engine=engine).test_client())
        response = client.post("/process", json={"task": "http", "client_name": "sh",
                                                 "params": {"url": "http://example.com", "timeout_s": 11}})
        assert response.status_code == 400 and "at most 10" in response.get_json()["error"]["message"]
    finally:
        httpspec.configure(settings.http_timeout_max_s)


def test_a_name_resolving_to_a_blocked_address_fails_the_attempt_without_retry(
    client: Any, threads: Any, target: Any, engine: Any
) -> None:
    threads.worker(http_allow="")  # this tasker allows nothing internal
    threads.controller()
    port = target.url.rsplit(":", 1)[1]
    rid = submit(client, "http", {"url": f"http://localhost:{port}/ok"}, retries=3)["rid"]
    item = wait_for(lambda: completed(client, rid), what="the blocked attempt")
    assert item["status"] == "failed" and "blocked destination" in item["error"]
    assert attempts(engine, rid) == [(1, "failed", None)]
    assert target.arrivals_for("/ok") == []


def test_a_literal_internal_address_is_refused_at_submit_time(client: Any) -> None:
    response = client.post("/process", json={"task": "http", "client_name": "sh",
                                             "params": {"url": "http://169.254.169.254/latest/meta-data/"}})
    assert response.status_code == 400
    assert "blocked destination" in response.get_json()["error"]["message"]


def test_redirects_are_not_followed_unless_asked(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/redirect?to=/ok", "success_codes": [302]})["rid"]
    item = wait_for(lambda: completed(client, rid), what="the redirect answer")
    assert item["status"] == "completed" and item["result"]["status_code"] == 302
    assert target.arrivals_for("/ok") == []


def test_followed_redirects_are_capped_at_five_hops(client: Any, threads: Any, target: Any) -> None:
    threads.worker()
    ok = submit(client, "http", {"url": target.url + "/chain/5", "follow_redirects": True})["rid"]
    too_many = submit(client, "http", {"url": target.url + "/chain/7", "follow_redirects": True}, retries=3)["rid"]
    assert wait_for(lambda: completed(client, ok), what="five hops")["result"]["status_code"] == 200
    failed = wait_for(lambda: completed(client, too_many), what="too many hops")
    assert failed["status"] == "failed" and "more than 5 redirects" in failed["error"]


def test_every_redirect_hop_is_checked_by_the_ssrf_guard(client: Any, threads: Any, target: Any, engine: Any) -> None:
    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/redirect?to=http://169.254.169.254/latest/meta-data/",
                                  "follow_redirects": True}, retries=3)["rid"]
    item = wait_for(lambda: completed(client, rid), what="the blocked hop")
    assert item["status"] == "failed" and "blocked destination" in item["error"]
    assert attempts(engine, rid) == [(1, "failed", None)]


def test_every_call_is_signed_with_the_clients_secret(client: Any, threads: Any, target: Any, engine: Any) -> None:
    from core.signing import verify_signature

    threads.worker()
    rid = submit(client, "http", {"url": target.url + "/ok", "post_data": {"signed": True}}, name="signer")["rid"]
    wait_for(lambda: completed(client, rid, "signer"), what="the signed call")
    with engine.connect() as conn:
        secret = conn.execute(text("SELECT signing_secret FROM clients WHERE name = 'signer'")).scalar_one()
    [arrival] = target.arrivals_for("/ok")
    assert len(secret) == 64
    assert verify_signature(secret, arrival.headers["Tasker-Signature"], arrival.body)
    assert not verify_signature("another-secret", arrival.headers["Tasker-Signature"], arrival.body)
