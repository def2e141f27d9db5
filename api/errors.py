"""The one place where errors become HTTP answers: always ``{"error": {"message": ...}}``,
never an HTML page or a stack trace."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg2
from flask import Flask, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from core.errors import TaskerError

log = logging.getLogger("tasker.api")


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, **extra}}


def install(app: Flask) -> None:
    @app.errorhandler(TaskerError)
    def tasker_error(exc: TaskerError) -> Any:
        status = exc.http_status
        if status >= 500:
            log.warning("request failed: %s", exc, extra={"action": "error", "path": request.path})
        response = jsonify(error_body(str(exc)))
        response.status_code = status
        retry_after = getattr(exc, "retry_after", None)  # TooManyRequests: whole seconds
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(psycopg2.OperationalError)
    def store_down(exc: Exception) -> Any:
        # a safety net: the store wraps these as StoreUnavailable, but never answer 500 for them
        log.warning("database unavailable: %s", exc, extra={"action": "error", "path": request.path})
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return jsonify(error_body(f"database unavailable: {first}")), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if code == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif code == 405:
            allowed = sorted(m for m in (exc.valid_methods or []) if m not in ("HEAD", "OPTIONS"))  # type: ignore[attr-defined]
            message = f"method {request.method} is not allowed on {request.path}; use {', '.join(allowed)}"
        elif code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large: the limit is {limit} bytes"
        else:
            message = exc.description or exc.name
        response = jsonify(error_body(message))
        response.status_code = code
        if code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        ref = uuid.uuid4().hex[:12]
        log.exception("unexpected error", extra={"action": "error", "ref": ref, "path": request.path})
        return jsonify(error_body(f"internal error (reference {ref}); it was logged")), 500
