"""Who is calling: ``Authorization: Bearer <API key>`` on every endpoint except the health
checks and the OpenAPI document, and what that caller may see and change."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, g, request

from api.services import services
from core.errors import Forbidden, Unauthorized
from db.engine import transaction
from db.store import clients
from db.store.clients import Principal

log = logging.getLogger("tasker.api.auth")
PUBLIC = frozenset({"/healthz", "/readyz", "/openapi.json"})
CACHE_S = 2.0  # a revoked key stops working within this long
_cache: dict[str, tuple[Principal, float]] = {}
_lock = threading.Lock()


def install(app: Flask) -> None:
    settings = app.extensions["tasker"].settings
    if settings.insecure_no_auth:
        log.warning("API keys are OFF (TASKER_INSECURE_NO_AUTH): anyone who can reach %s:%s can do anything",
                    settings.api_host, settings.api_port, extra={"action": "insecure"})
    if settings.admin_key_file:
        _adopt_admin_key(app, Path(settings.admin_key_file))

    @app.before_request
    def authenticate() -> None:
        g.principal = None
        if request.path in PUBLIC or services().settings.insecure_no_auth:
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise Unauthorized("missing API key: send 'Authorization: Bearer <API key>'")
        g.principal = _principal(header[len("Bearer "):].strip())


def _principal(key: str) -> Principal:
    now = time.monotonic()
    cached = _cache.get(key)
    if cached and cached[1] > now:
        return cached[0]
    with transaction(services().engine) as conn:
        found = clients.authenticate(conn, key)
    if found is None:
        raise Unauthorized("invalid or revoked API key")
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (found, now + CACHE_S)
    return found


def _adopt_admin_key(app: Flask, path: Path) -> None:
    try:
        key = path.read_text().strip()
    except OSError:
        log.warning("TASKER_ADMIN_KEY_FILE %s cannot be read; no bootstrap admin key", path)
        return
    with transaction(app.extensions["tasker"].engine) as conn:
        try:
            clients.create(conn, "admin", admin=True, key=key)
        except ValueError as exc:
            log.warning("bootstrap admin key not adopted: %s", exc)


def principal() -> Principal | None:
    """The caller, or None when keys are off (then everyone acts as an admin would)."""
    return getattr(g, "principal", None)


def acting_client(name: str | None, default: str | None = None) -> str | None:
    """The client a request acts for: its key's own, or any named one for an admin."""
    who = principal()
    if who is None:
        return name or default
    if name is None or name == who.name:
        return who.name
    if who.admin:
        return name
    raise Forbidden(f"Forbidden: client_name {name!r} is not the client of this API key ({who.name!r})")


def require_admin() -> None:
    who = principal()
    if who is not None and not who.admin:
        raise Forbidden("Forbidden: this needs an admin API key")


def check_owner(task: dict[str, Any]) -> None:
    who = principal()
    if who is not None and not who.admin and task["client_name"] != who.name:
        raise Forbidden("Forbidden: Task does not belong to this user")
