"""Redaction: credentials hidden in shown params, free text and log records."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from core.logs import JsonFormatter, TextFormatter
from core.redact import (
    REDACTED,
    is_sensitive_header,
    redact_headers,
    redact_params,
    redact_url,
    restore_params,
    scrub,
    scrub_patterns,
    task_secrets,
)

API_KEY = "tk_0123456789ab_Zq3-xY_9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789a"
SIGNING_SECRET = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("Set-Cookie", True),
        ("X-Api-Key", True),
        ("X-AUTH-TOKEN", True),
        ("X-Access-Token", True),
        ("X-Client-Secret", True),
        ("X-Password", True),
        ("X-Passwd", True),
        ("Api_Key", True),
        ("X-ApiKey", True),
        ("X-Session-Id", True),
        ("X-Hub-Signature-256", True),
        ("Content-Type", False),
        ("X-Custom", False),
        ("Accept", False),
        ("User-Agent", False),
        ("X-Request-Id", False),
    ],
)
def test_sensitive_header_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_header(name) is sensitive


def test_redact_headers_hides_only_sensitive_values_and_copies() -> None:
    headers = {"Authorization": "Bearer abc", "X-Custom": "yes", "x-api-key": "k"}
    assert redact_headers(headers) == {"Authorization": REDACTED, "X-Custom": "yes", "x-api-key": REDACTED}
    assert headers["Authorization"] == "Bearer abc"
    assert redact_headers(None) == {} and redact_headers({}) == {}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://user:pw@example.com/hook?a=1", f"https://user:{REDACTED}@example.com/hook?a=1"),
        ("http://u:p%40ss@host:8080/x@y", f"http://u:{REDACTED}@host:8080/x@y"),
        ("https://user@example.com/", "https://user@example.com/"),  # no password
        ("https://:pw@example.com/", f"https://:{REDACTED}@example.com/"),
        ("https://example.com/a@b", "https://example.com/a@b"),  # an @ in the path only
    ],
)
def test_redact_url_hides_the_password_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"first": 1, "second": 2}, {"first": 1, "second": 2}),
        ([1, 2], [1, 2]),
        (None, None),
        ({"url": "https://a.example/", "headers": {"X-Token": "t0ps3cret", "Accept": "*/*"}},
         {"url": "https://a.example/", "headers": {"X-Token": REDACTED, "Accept": "*/*"}}),
        ({"url": "https://u:pw@a.example/", "method": "GET"},
         {"url": f"https://u:{REDACTED}@a.example/", "method": "GET"}),
    ],
)
def test_redact_params(params: Any, shown: Any) -> None:
    assert redact_params(params) == shown


def test_redact_params_leaves_the_stored_params_alone() -> None:
    stored = {"url": "https://u:pw@a.example/", "headers": {"Authorization": "Bearer real-token"}}
    redact_params(stored)
    assert stored == {"url": "https://u:pw@a.example/", "headers": {"Authorization": "Bearer real-token"}}


STORED = {"url": "https://u:pw@a.example/x", "headers": {"Authorization": "Bearer real-token", "X-A": "1"}}


@pytest.mark.parametrize(
    ("new", "restored"),
    [
        # the shown values sent back: the stored ones stay
        ({**STORED, "url": f"https://u:{REDACTED}@a.example/x", "headers": {"authorization": REDACTED, "X-A": "2"}},
         {**STORED, "headers": {"authorization": "Bearer real-token", "X-A": "2"}}),
        # new values replace the stored ones
        ({"url": "https://b.example/", "headers": {"Authorization": "Bearer new-token"}},
         {"url": "https://b.example/", "headers": {"Authorization": "Bearer new-token"}}),
        # a redacted header the task never had stays as sent (nothing to restore)
        ({**STORED, "headers": {"X-Other-Token": REDACTED}}, {**STORED, "headers": {"X-Other-Token": REDACTED}}),
        # another host with a hidden password is not given the stored password
        ({**STORED, "url": f"https://u:{REDACTED}@evil.example/x"}, {**STORED, "url": f"https://u:{REDACTED}@evil.example/x"}),
    ],
)
def test_restore_params_undoes_only_redaction(new: dict[str, Any], restored: dict[str, Any]) -> None:
    assert restore_params(new, STORED) == restored


def test_task_secrets_are_the_sensitive_values_the_url_password_and_the_signing_secret() -> None:
    params = {"url": "https://user:p%40ssword@a.example/", "headers": {"Authorization": "Bearer abcdef123", "X-A": "visible"}}
    found = task_secrets(params, SIGNING_SECRET)
    assert SIGNING_SECRET in found and "Bearer abcdef123" in found and "abcdef123" in found
    assert "p%40ssword" in found and "p@ssword" in found
    assert "dXNlcjpwQHNzd29yZA==" in found  # Basic base64("user:p@ssword"), what an HTTP client sends
    assert "visible" not in found
    assert task_secrets({"first": 1}) == [] and task_secrets(None) == []


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("nothing to hide", [], "nothing to hide"),
        ("token=s3cr3t-value here", ["s3cr3t-value"], f"token={REDACTED} here"),
        ("short abc stays", ["abc"], "short abc stays"),  # shorter than MIN_SECRET
        ("twice: xyz123 and xyz123", ["xyz123"], f"twice: {REDACTED} and {REDACTED}"),
        ("longest first: abcdef-123456", ["abcdef", "abcdef-123456"], f"longest first: {REDACTED}"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", [], f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer abcdef123456", [], f"authorization: bearer {REDACTED}"),
        ("'Authorization: Bearer <API key>'", [], "'Authorization: Bearer <API key>'"),  # not a token
        (f"key {API_KEY} used", [], f"key tk_0123456789ab_{REDACTED} used"),
        ("tk_ alone and tk_xyz_short", [], "tk_ alone and tk_xyz_short"),
        (f"secret={SIGNING_SECRET}", [], f"secret={REDACTED}"),
        (f"Tasker-Signature: t=1,v1={SIGNING_SECRET}", [], f"Tasker-Signature: t=1,v1={REDACTED}"),
        ("rid 954cf1801564499ea1846b0a60b4258d stays", [], "rid 954cf1801564499ea1846b0a60b4258d stays"),
        ("postgresql://tasker:hunter2@db:5432/tasker", [], f"postgresql://tasker:{REDACTED}@db:5432/tasker"),
        ("mail me at a@b.example", [], "mail me at a@b.example"),
        ("", ["abcdefgh"], ""),
    ],
)
def test_scrub(text: str, secrets: list[str], expected: str) -> None:
    assert scrub(text, secrets) == expected
    assert scrub(expected, secrets) == expected  # idempotent


def test_scrub_patterns_returns_plain_text_unchanged() -> None:
    text = "run succeeded"
    assert scrub_patterns(text) is text


def _record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("tasker.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_formatter_scrubs_the_message_and_every_extra_field() -> None:
    record = _record("auth header %s", f"Bearer {API_KEY}", action="x", attempt=2,
                     detail={"Authorization": f"Bearer {API_KEY}"}, secret=SIGNING_SECRET, plain={"a": 1})
    line = JsonFormatter().format(record)
    out = json.loads(line)
    assert API_KEY not in line and SIGNING_SECRET not in line
    assert out["msg"] == f"auth header Bearer {REDACTED}"
    assert out["secret"] == REDACTED and out["attempt"] == 2 and out["action"] == "x"
    assert out["plain"] == {"a": 1}  # nothing to hide: kept as it was


def test_text_formatter_scrubs_the_message_extras_and_traceback() -> None:
    try:
        raise RuntimeError(f"failed with key {API_KEY}")
    except RuntimeError:
        import sys

        record = _record("oops %s", SIGNING_SECRET, url="https://u:pw123456@h.example/")
        record.exc_info = sys.exc_info()
    line = TextFormatter().format(record)
    assert API_KEY not in line and SIGNING_SECRET not in line and "pw123456" not in line
    assert f"tk_0123456789ab_{REDACTED}" in line


def test_configured_logging_writes_no_credentials() -> None:
    from core.logs import configure

    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("INFO", "json", stream)
        logging.getLogger("tasker.test").info("sent Authorization: Bearer %s", API_KEY, extra={"key": API_KEY})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert stream.getvalue() and API_KEY not in stream.getvalue()
