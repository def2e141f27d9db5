"""The ``http`` task: call a URL once per attempt and report exactly what happened.

Every call carries ``User-Agent: Tasker/<version>``, ``Tasker-Task-Id``, ``Tasker-Run-Id``,
``Tasker-Attempt`` and an ``Idempotency-Key`` that is the same for every attempt of one run.
Success is a 2xx (or one of the task's ``success_codes``). Connection errors, timeouts, 5xx,
408 and 429 are worth retrying (``Retry-After`` is honoured); other answers are final.
Redirects are not followed unless the task asks (``follow_redirects``); then every hop is
checked by the SSRF guard again, at most five.

The attempt's error text, response excerpt and result body are scrubbed of the task's
credentials (sensitive header values, the URL password) and of the client's signing secret,
so a target that echoes its request back does not put them in the attempt record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from core import __version__, redact, signing, ssrf
from core.httpspec import MAX_REDIRECTS
from tasker.execute import Report, RunContext

#: response headers kept in the attempt's result
KEPT_HEADERS = ("content-type", "content-length", "location", "retry-after", "etag", "date")
_config: dict[str, Any] = {"excerpt_bytes": 65536, "allow": ssrf.Allow()}
_session: aiohttp.ClientSession | None = None


def configure(excerpt_bytes: int, allow: str = "") -> None:
    _config["excerpt_bytes"] = excerpt_bytes
    _config["allow"] = ssrf.Allow.parse(allow)


class GuardedResolver(AbstractResolver):
    """Resolves a name and refuses it if any of its addresses is blocked; the connection then
    goes to the addresses checked here, so a second lookup cannot swap them (DNS rebinding)."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ssrf.check(host, ipaddress.ip_address(result["host"]), _config["allow"])
        return results

    async def close(self) -> None:
        await self._inner.close()


async def _get_session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(
            # no DNS cache: every attempt resolves (and checks) again
            connector=aiohttp.TCPConnector(limit=0, use_dns_cache=False, resolver=GuardedResolver()),
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
    return _session


async def close_session() -> None:
    global _session
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _body(params: dict[str, Any], headers: dict[str, str]) -> bytes | None:
    if "body" not in params:
        return None
    body = params["body"]
    lower = {k.lower() for k in headers}
    if isinstance(body, str):
        if "content-type" not in lower:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode()
    if "content-type" not in lower:
        headers["Content-Type"] = "application/json"
    return json.dumps(body).encode()


async def run(params: dict[str, Any], ctx: RunContext) -> Report:
    return _scrubbed(await _call(params, ctx), redact.task_secrets(params, ctx.signing_secret))


def _scrubbed(report: Report, secrets: list[str]) -> Report:
    """``report`` without the task's credentials in any text it will be stored with."""
    error = None if report.error is None else redact.scrub(report.error, secrets)
    excerpt = None if report.response_excerpt is None else redact.scrub(report.response_excerpt, secrets)
    result = report.result
    if isinstance(result, dict) and isinstance(result.get("body"), str):
        body = excerpt if result["body"] == report.response_excerpt else redact.scrub(result["body"], secrets)
        result = {**result, "body": body}
    return dataclasses.replace(report, error=error, response_excerpt=excerpt, result=result)


async def _call(params: dict[str, Any], ctx: RunContext) -> Report:
    headers = {"User-Agent": f"Tasker/{__version__}", **params.get("headers", {})}
    headers.update({
        "Tasker-Task-Id": ctx.task_id,
        "Tasker-Run-Id": ctx.run_id,
        "Tasker-Attempt": str(ctx.attempt),
        "Idempotency-Key": ctx.run_id,
    })
    data = _body(params, headers)
    if ctx.signing_secret:
        headers[signing.HEADER] = signing.sign(ctx.signing_secret, data or b"")
    timeout = params.get("timeout_s", 30.0)
    try:  # literal addresses never reach the resolver
        ssrf.check_url_literal(params["url"], _config["allow"])
    except ssrf.BlockedDestination as exc:
        return Report(False, error=str(exc), retryable=False)
    session = await _get_session()
    started = time.perf_counter()
    method, url = params["method"], params["url"]
    follow = params.get("follow_redirects", False)
    deadline = aiohttp.ClientTimeout(total=timeout)
    try:
        for hop in range(MAX_REDIRECTS + 1):
            async with session.request(
                method, url, headers=headers, data=data, timeout=deadline, allow_redirects=False,
            ) as response:
                location = response.headers.get("Location")
                if follow and response.status in (301, 302, 303, 307, 308) and location:
                    if hop == MAX_REDIRECTS:
                        return Report(False, error=f"more than {MAX_REDIRECTS} redirects", retryable=False,
                                      http_status=response.status)
                    url = urljoin(url, location)
                    if urlsplit(url).scheme not in ("http", "https"):
                        return Report(False, error=f"redirect to a non-HTTP URL: {url}", retryable=False)
                    ssrf.check_url_literal(url, _config["allow"])  # names are checked by the resolver
                    if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                        method, data = "GET", None
                        headers.pop("Content-Type", None)
                    continue
                raw = await response.content.read(_config["excerpt_bytes"])
                status = response.status
                kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                break
    except TimeoutError:
        return Report(False, error=f"timed out after {timeout:g}s", retryable=True)
    except asyncio.CancelledError:
        raise
    except ssrf.BlockedDestination as exc:
        return Report(False, error=str(exc), retryable=False)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ssrf.BlockedDestination):
            return Report(False, error=str(exc.os_error), retryable=False)
        return Report(False, error=f"connection failed: {type(exc).__name__}: {exc}", retryable=True)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Report(False, error=f"connection failed: {type(exc).__name__}: {exc}", retryable=True)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    excerpt = raw.decode("utf-8", errors="replace")
    result = {"status_code": status, "latency_ms": latency_ms, "headers": kept, "body": excerpt}
    codes = params.get("success_codes")
    ok = status in codes if codes else 200 <= status < 300
    if ok:
        return Report(True, result=result, http_status=status, response_excerpt=excerpt)
    retryable = status in (408, 429) or status >= 500
    return Report(
        False, result=result, error=f"HTTP {status}", retryable=retryable,
        retry_after_s=retry_after if retryable else None, http_status=status, response_excerpt=excerpt,
    )
