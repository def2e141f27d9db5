"""The HTTP task: what a client may ask Tasker to call, validated the same way by the API and
trusted by the tasker."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from core import catalogue, ssrf
from core.errors import ValidationError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
FIELDS = ("url", "method", "headers", "body", "post_data", "timeout_s", "success_codes", "follow_redirects")
#: redirects followed at most, when a task asks to follow them (each hop is checked again)
MAX_REDIRECTS = 5
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_BYTES = 8192
#: headers Tasker sets itself on every call; a task may not override them
RESERVED = ("tasker-task-id", "tasker-run-id", "tasker-attempt", "idempotency-key", "content-length", "host")
DEFAULT_TIMEOUT_S = 30.0
#: the longest timeout a task may ask for (TASKER_HTTP_TIMEOUT_MAX_S; see configure)
_limits = {"max_timeout_s": 300.0}
_allow = {"allow": ssrf.Allow()}


def configure(max_timeout_s: float, allow: str = "") -> None:
    """Apply the operator's cap on per-task timeouts and the SSRF allow list (once per process)."""
    _limits["max_timeout_s"] = max_timeout_s
    _allow["allow"] = ssrf.Allow.parse(allow)


def validate(params: Any) -> dict[str, Any]:
    """Normalise an HTTP spec; raise ValidationError naming the field to fix."""
    if not isinstance(params, dict):
        raise ValidationError("params of http must be a JSON object with at least 'url'")
    unknown = sorted(set(params) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown param {unknown[0]!r} for http; expected {', '.join(FIELDS)}")
    url = params.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationError("param 'url' of http must be a non-empty string")
    if len(url) > MAX_URL:
        raise ValidationError(f"param 'url' of http is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a malformed port or IPv6 literal raises here rather than at call time
    except ValueError as exc:
        raise ValidationError(f"param 'url' of http is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("param 'url' of http must be an absolute http:// or https:// URL")
    try:
        ssrf.check_url_literal(url, _allow["allow"])
    except ssrf.BlockedDestination as exc:
        raise ValidationError(str(exc)) from None
    if "body" in params and "post_data" in params:
        raise ValidationError("give either 'body' or 'post_data' (a JSON POST), not both")
    method = params.get("method")
    body = params.get("body")
    if "post_data" in params:
        body = params["post_data"]
        method = method or "POST"
    method = (method or "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValidationError(f"param 'method' of http must be one of {', '.join(METHODS)}")
    method = method.upper()
    if body is not None and method in ("GET", "HEAD"):
        raise ValidationError(f"a {method} call cannot carry a body; use POST, PUT, PATCH or DELETE")
    headers = params.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValidationError("param 'headers' of http must be an object of string values")
    if len(headers) > MAX_HEADERS:
        raise ValidationError(f"param 'headers' of http has more than {MAX_HEADERS} headers")
    if sum(len(k) + len(v) for k, v in headers.items()) > MAX_HEADER_BYTES:
        raise ValidationError(f"param 'headers' of http is larger than {MAX_HEADER_BYTES} bytes")
    for name in headers:
        if name.lower() in RESERVED:
            raise ValidationError(f"header {name!r} is set by Tasker and cannot be given")
        if any(c in name + headers[name] for c in "\r\n"):
            raise ValidationError(f"header {name!r} contains a line break")
    cap = _limits["max_timeout_s"]
    timeout = params.get("timeout_s", min(DEFAULT_TIMEOUT_S, cap))
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= cap:
        raise ValidationError(f"param 'timeout_s' of http must be a number of seconds in (0, {cap:g}]")
    codes = params.get("success_codes")
    if codes is not None and (
        not isinstance(codes, list)
        or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes)
    ):
        raise ValidationError("param 'success_codes' of http must be a list of HTTP status codes")
    out: dict[str, Any] = {"url": url, "method": method, "headers": dict(headers), "timeout_s": float(timeout)}
    if body is not None:
        try:
            json.dumps(body)
        except (TypeError, ValueError):
            raise ValidationError("param 'body' of http must be a JSON value or a string") from None
        out["body"] = body
    if codes:
        out["success_codes"] = sorted(set(codes))
    follow = params.get("follow_redirects", False)
    if not isinstance(follow, bool):
        raise ValidationError("param 'follow_redirects' of http must be true or false")
    if follow:
        out["follow_redirects"] = True
    return out


def schema(max_timeout_s: float | None = None) -> dict[str, Any]:
    """The JSON Schema of an HTTP spec (the shapes; ``validate`` adds the rules between fields
    and the SSRF check)."""
    cap = _limits["max_timeout_s"] if max_timeout_s is None else max_timeout_s
    return {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description": "absolute http:// or https:// URL; internal addresses are refused",
                    "x-describe": f"an absolute http:// or https:// URL of at most {MAX_URL} characters"},
            "method": {"type": "string", "enum": [*METHODS, *(m.lower() for m in METHODS)],
                       "description": "default GET, or POST with post_data"},
            "headers": {"type": "object", "maxProperties": MAX_HEADERS,
                        "additionalProperties": {"type": "string", "maxLength": MAX_HEADER_BYTES},
                        "description": f"at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes in all",
                        "x-describe": "an object of string values"},
            "body": {"description": "the request body: a string as is, any other JSON value as JSON"},
            "post_data": {"description": "a JSON body; the method defaults to POST"},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": cap,
                          "description": f"seconds (default {min(DEFAULT_TIMEOUT_S, cap):g})"},
            "success_codes": {"type": "array", "maxItems": 100,
                              "items": {"type": "integer", "minimum": 100, "maximum": 599},
                              "description": "status codes that count as success (default 2xx)"},
            "follow_redirects": {"type": "boolean", "description": f"follow up to {MAX_REDIRECTS} redirects"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }


catalogue.register(catalogue.TaskType(
    "http", validate, "tasker.tasks.http:run", False,
    "call a URL (method, headers, body); retried on connection errors, timeouts, 5xx, 408 and 429",
    schema,
))
