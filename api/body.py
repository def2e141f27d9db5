"""Reading request bodies: JSON whatever the Content-Type (``curl -d`` sends form encoding)."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from core.errors import HeadersTooLarge, UriTooLong, ValidationError
from core.retry import RetryPolicy
from core.settings import Settings


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_request_shape(settings: Settings) -> None:
    """URL length, header count and header size, answered in JSON (414, 431) before any work.
    The HTTP servers' own limits are set above these (cli/serve.py), so these are the ones a
    client meets."""
    length = len(request.full_path) if request.query_string else len(request.path)
    if length > settings.max_url_length:
        raise UriTooLong(f"request URL too long: {length} characters of path and query string, the limit is "
                         f"{settings.max_url_length} (TASKER_MAX_URL_LENGTH); send long values in a JSON body")
    headers = request.headers
    if len(headers) > settings.max_request_headers:
        raise HeadersTooLarge(f"too many request headers: {len(headers)}, the limit is "
                              f"{settings.max_request_headers} (TASKER_MAX_REQUEST_HEADERS)")
    size = sum(len(k) + len(v) + 4 for k, v in headers.items())
    if size > settings.max_header_bytes:
        raise HeadersTooLarge(f"request headers too large: {size} bytes, the limit is {settings.max_header_bytes} "
                              "(TASKER_MAX_HEADER_BYTES)")


def json_object(required: bool = True) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ValidationError("request body must be a JSON object; it was empty")
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    if b"\\u0000" in raw and _has_nul(data):
        raise ValidationError("request body holds a NUL character (\\u0000), which Tasker cannot store")
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def no_nul(where: str, values: Any) -> None:
    """Path and query values reach PostgreSQL, which cannot hold a NUL character."""
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(f"the {where} holds a NUL character, which Tasker cannot store")


def client_name(value: str | None, required: bool = True) -> str | None:
    """The request's ``client_name`` (its shape is checked by the schema); required when API
    keys are off, since there is no key to name the client."""
    if value is None and required:
        raise ValidationError("missing 'client_name': name the client making the request")
    return value


def retry_policy(body: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """``retries``, ``retry_base_s`` and ``retry_max_s`` of a request, already checked by its
    schema, with the settings for those left out (None: none given, the defaults apply)."""
    if not any(k in body for k in ("retries", "retry_base_s", "retry_max_s")):
        return None
    return RetryPolicy(body.get("retries", settings.retries), float(body.get("retry_base_s", settings.retry_base_s)),
                       float(body.get("retry_max_s", settings.retry_max_s))).to_json()
