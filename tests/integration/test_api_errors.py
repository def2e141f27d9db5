"""Every error a client can cause is a 4xx JSON body that says what to fix."""

from __future__ import annotations

from typing import Any

import pytest


def assert_error(response: Any, status: int, *needles: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    message = response.get_json()["error"]["message"]
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("{not json", ("not valid JSON",)),
        ("[1, 2]", ("JSON object",)),
        ("", ("empty",)),
        ('{"task": "sum2", "client_name": "sh", "params": {"first": NaN, "second": 1}}', ("not valid JSON",)),
        ('{"task": "divide", "client_name": "sh", "params": {}}', ("unknown task 'divide'", "sum2")),
        ('{"client_name": "sh", "params": {"first": 1, "second": 2}}', ("missing 'task'",)),
        ('{"task": "sum2", "client_name": "", "params": {"first": 1, "second": 2}}', ("client_name",)),
        ('{"task": "sum2", "client_name": "sh", "params": {"first": 1}}', ("missing param 'second'",)),
        ('{"task": "sum2", "client_name": "sh"}', ("params of sum2",)),
        ('{"task": "sum2", "client_name": "sh", "params": {"first": "1", "second": 2}}', ("'first'", "number")),
        ('{"task": "mult3", "client_name": "sh", "params": {"first": 1, "second": 2, "third": true}}', ("'third'",)),
        ('{"task": "surprise", "client_name": "sh", "params": {"first": 0}}', ("between 1 and 20",)),
        ('{"task": "sum2", "client_name": "sh", "params": {"first": 1, "second": 2}, "colour": "red"}', ("unknown field 'colour'",)),
        ('{"task": "sum2", "client_name": "sh", "params": {"first": 1, "second": 2}, "retries": -1}', ("'retries'",)),
    ],
)
def test_bad_process_requests_get_400_naming_the_problem(client: Any, body: str, needles: tuple[str, ...]) -> None:
    assert_error(client.post("/process", data=body), 400, *needles)


def test_unknown_path_is_404_json(client: Any) -> None:
    assert_error(client.get("/nope"), 404, "no such endpoint", "/nope")


def test_wrong_method_is_405_json_naming_the_allowed_one(client: Any) -> None:
    response = client.get("/process")
    assert_error(response, 405, "POST")
    assert "POST" in response.headers["Allow"]
    assert_error(client.post("/get_requests_status", data="{}"), 405, "GET")


def test_body_over_the_limit_is_413_json(client: Any, settings: Any) -> None:
    body = '{"task": "sum2", "client_name": "' + "x" * settings.max_body_bytes + '"}'
    assert_error(client.post("/process", data=body), 413, str(settings.max_body_bytes))


def test_requests_status_needs_a_sane_limit_and_cursor(client: Any) -> None:
    assert_error(client.get("/get_requests_status?client_name=sh&limit=0"), 400, "'limit'")
    assert_error(client.get("/get_requests_status?client_name=sh&cursor=abc"), 400, "'cursor'")


def test_set_processes_status_accepts_only_active_and_suspended(client: Any) -> None:
    assert_error(client.post("/set_processes_status", data='{"mult3": "error"}'), 400, "'active' or 'suspended'")
    assert_error(client.post("/set_processes_status", data='{"divide": "active"}'), 400, "unknown task")
    assert_error(client.post("/set_processes_status", data="{}"), 400, "name at least one task type")


def test_client_name_may_be_left_out_with_a_key_and_is_required_without_keys(client: Any, settings: Any, engine: Any) -> None:
    import dataclasses

    from api.app import create_app

    body = '{"task": "sum2", "params": {"first": 1, "second": 2}}'
    assert client.post("/process", data=body).status_code == 201
    open_api = create_app(dataclasses.replace(settings, insecure_no_auth=1), engine=engine).test_client()
    assert_error(open_api.post("/process", data=body), 400, "missing 'client_name'")


def test_url_length_header_count_and_size_are_limited_with_json_answers(client: Any) -> None:
    assert_error(client.get("/tasks?state=all&x=" + "a" * 4000), 414, "request URL too long", "TASKER_MAX_URL_LENGTH")
    assert_error(client.get("/healthz?" + "a" * 4000), 414, "request URL too long")  # before anything else
    many = {f"X-Extra-{i}": "1" for i in range(65)}
    assert_error(client.get("/tasks", headers=many), 431, "too many request headers", "TASKER_MAX_REQUEST_HEADERS")
    assert_error(client.get("/tasks", headers={"X-Big": "b" * 17000}), 431, "request headers too large")
    assert client.get("/tasks?state=all", headers={f"X-Extra-{i}": "1" for i in range(40)}).status_code == 200
