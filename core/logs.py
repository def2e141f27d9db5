"""Structured logging: one JSON object per line (or readable text), with work fields.

Every record about work carries ``task_id``, ``run_id``, ``attempt``, ``worker`` and
``action`` when they apply; pass them as ``extra={...}`` or through :func:`log_event`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from core.redact import scrub_patterns

WORK_FIELDS = ("action", "task_type", "task_id", "run_id", "attempt", "worker", "count", "error")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_PLAIN = (int, float, bool, type(None))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's extra fields, each value scrubbed of credentials (a non-string value is
    replaced by its scrubbed ``str()`` only when that hid something)."""
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _RESERVED or key.startswith("_"):
            continue
        if isinstance(value, str):
            value = scrub_patterns(value)
        elif not isinstance(value, _PLAIN):
            text = str(value)
            scrubbed = scrub_patterns(text)
            if scrubbed != text:
                value = scrubbed
        out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Message, extra fields and traceback pass through
    :func:`core.redact.scrub_patterns`: no Bearer token, API key or signing secret is written."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub_patterns(record.getMessage()),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = scrub_patterns(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines, scrubbed like :class:`JsonFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = (f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname:<7} {record.name}: "
                f"{scrub_patterns(record.getMessage())}")
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + scrub_patterns(self.formatException(record.exc_info))
        return line


def configure(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "gunicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra={k: v for k, v in fields.items() if v is not None})
