"""Keeping credentials out of logs, attempt records and API answers.

Authorization headers, API keys and signing secrets must never show up where people (or log
pipelines) read. Three tools:

* :func:`redact_headers` and :func:`redact_url` hide the credentials of an HTTP spec before it
  is shown; :func:`redact_params` applies both to a task's params, :func:`restore_params`
  undoes that for a PATCH that sends a shown value back unchanged.
* :func:`scrub` replaces known secret values (:func:`task_secrets`) plus anything that looks
  like a credential (:func:`scrub_patterns`) in free text: response excerpts, error messages.
* :func:`scrub_patterns` alone is what the log formatters run on every record, so it skips
  its regular expressions unless the text holds a candidate substring.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"
#: explicit secrets shorter than this are not scrubbed from text (they would match anything)
MIN_SECRET = 6
_EXACT_NAMES = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token",
})
_NAME_PARTS = ("token", "secret", "password", "passwd", "api-key", "apikey", "api_key", "session", "signature")

#: ``Bearer <token>`` (the token part is replaced, the scheme kept for the reader)
_BEARER = re.compile(r"\b((?i:bearer)\s+)[A-Za-z0-9\-._~+/]{6,}=*")
#: Tasker API keys, ``tk_<12 hex key id>_<secret>`` (core.keys); the public key id is kept
_API_KEY = re.compile(r"\b(tk_[0-9a-f]{12}_)[A-Za-z0-9_\-]+")
#: signing secrets (64 hex characters, db migration 0004), and so also HMAC-SHA256 signatures
_HEX64 = re.compile(r"(?<![0-9A-Za-z_])[0-9a-fA-F]{64}(?![0-9A-Za-z_])")  # (faster than \b…\b)
#: the password of ``scheme://user:password@host``
_USERINFO = re.compile(r"(://[^\s/@:]*):[^\s/@]+@")


def is_sensitive_header(name: str) -> bool:
    """True for a header whose value is a credential (case-insensitive)."""
    lower = name.lower()
    return lower in _EXACT_NAMES or any(part in lower for part in _NAME_PARTS)


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``headers`` with the values of sensitive headers replaced by ``[redacted]``."""
    if not headers:
        return {}
    return {k: REDACTED if is_sensitive_header(k) else v for k, v in headers.items()}


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` userinfo replaced by ``[redacted]``;
    anything else is returned exactly as given."""
    if "@" not in url:
        return url
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return _USERINFO.sub(rf"\1:{REDACTED}@", url)
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return url.replace(netloc, f"{user}:{REDACTED}@{host}", 1)


def redact_params(params: Any) -> Any:
    """Task params as shown to a client: sensitive ``headers`` values and the ``url`` password
    hidden. Anything else (and params without those fields) is returned unchanged."""
    if not isinstance(params, dict):
        return params
    headers, url = params.get("headers"), params.get("url")
    if not isinstance(headers, dict) and not (isinstance(url, str) and "@" in url):
        return params
    shown = dict(params)
    if isinstance(headers, dict):
        shown["headers"] = redact_headers(headers)
    if isinstance(url, str):
        shown["url"] = redact_url(url)
    return shown


def restore_params(new: dict[str, Any], stored: Any) -> dict[str, Any]:
    """``new`` (a PATCH merged over ``stored``) with the values a client can only have copied
    from a redacted answer put back: a header sent as ``[redacted]`` keeps its stored value, and
    the URL as shown (password hidden) stays the stored URL."""
    if not isinstance(stored, dict):
        return new
    out = dict(new)
    old_url, url = stored.get("url"), new.get("url")
    if isinstance(old_url, str) and isinstance(url, str) and url != old_url and url == redact_url(old_url):
        out["url"] = old_url
    old_headers, headers = stored.get("headers"), new.get("headers")
    if isinstance(old_headers, dict) and isinstance(headers, dict) and REDACTED in headers.values():
        by_name = {k.lower(): v for k, v in old_headers.items()}
        out["headers"] = {
            k: by_name.get(k.lower(), v) if v == REDACTED else v for k, v in headers.items()
        }
    return out


def _url_secrets(url: str) -> list[str]:
    """The password of ``url`` as written, decoded, and as the Basic credentials a client sends."""
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username or ""
    except ValueError:
        return []
    if not password:
        return []
    plain_user, plain_password = unquote(user), unquote(password)
    basic = base64.b64encode(f"{plain_user}:{plain_password}".encode("latin-1", "replace")).decode()
    return [password, plain_password, basic]


def task_secrets(params: Any, signing_secret: str | None = None) -> list[str]:
    """The secret values a task's params carry (sensitive header values, also without their
    ``Bearer``/``Basic`` scheme; the URL password) plus the client's signing secret."""
    found: list[str] = [signing_secret] if signing_secret else []
    if isinstance(params, dict):
        headers = params.get("headers")
        if isinstance(headers, dict):
            for name, value in headers.items():
                if isinstance(value, str) and is_sensitive_header(name):
                    found.append(value)
                    _, _, credentials = value.strip().partition(" ")
                    if credentials.strip():
                        found.append(credentials.strip())
        url = params.get("url")
        if isinstance(url, str) and "@" in url:
            found.extend(_url_secrets(url))
    return found


def scrub_patterns(text: str) -> str:
    """``text`` with Bearer tokens, Tasker API keys, 64-hex secrets and URL passwords hidden.
    Each expression runs only when the text holds a candidate substring (logging is hot)."""
    if "earer" in text or "EARER" in text:  # first: a Bearer token may be an API key
        text = _BEARER.sub(rf"\1{REDACTED}", text)
    if "tk_" in text:
        text = _API_KEY.sub(rf"\1{REDACTED}", text)
    if len(text) >= 64:
        text = _HEX64.sub(REDACTED, text)
    if "@" in text and "://" in text:
        text = _USERINFO.sub(rf"\1:{REDACTED}@", text)
    return text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every occurrence of ``secrets`` (those of at least :data:`MIN_SECRET`
    characters, longest first) and of :func:`scrub_patterns` replaced by ``[redacted]``."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return scrub_patterns(text)
