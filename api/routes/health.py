"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from api.errors import error_body
from api.openapi import doc
from api.services import services
from core.errors import QueueUnavailable, StoreUnavailable
from db.engine import transaction

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@doc("Liveness: the API process answers", tag="health", responses={200: "Health"}, public=True)
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@doc("Readiness: the database and SQS answer", tag="health", responses={200: "Ready"}, public=True, errors=(503,))
def readyz() -> Any:
    svc = services()
    problems: list[str] = []
    checks = {"database": "ok", "sqs": "ok"}
    try:
        with transaction(svc.engine) as conn:
            conn.execute(text("SELECT 1"))
    except StoreUnavailable as exc:
        checks["database"] = str(exc)
        problems.append(str(exc))
    try:
        svc.transport.ping()
    except QueueUnavailable as exc:
        checks["sqs"] = str(exc)
        problems.append(str(exc))
    if problems:
        return jsonify({**error_body("not ready: " + "; ".join(problems)), "checks": checks}), 503
    return jsonify({"status": "ready", "checks": checks})
