"""Signed calls: every HTTP task call carries

    Tasker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

keyed with its client's signing secret, so a target can prove a call came from Tasker on
behalf of that client and is not a replay. Targets verify with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Tasker-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for a call whose raw body is ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, header: str | None, body: bytes, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """True if ``header`` is a valid Tasker signature of ``body`` made with ``secret`` within
    ``tolerance_s`` seconds of ``now``. Comparison is constant-time."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
