"""One exception root for everything Tasker raises on purpose.

The API maps each family to one HTTP status in one place (``api/errors.py``); the CLI prints
the cause chain of any of them and exits non-zero.
"""

from __future__ import annotations


class TaskerError(Exception):
    """Root of every error Tasker raises deliberately."""

    http_status = 500


class ValidationError(TaskerError):
    """The client sent something we cannot accept; the message says what to fix."""

    http_status = 400


class UriTooLong(TaskerError):
    """The request's path and query string are longer than the API accepts."""

    http_status = 414


class HeadersTooLarge(TaskerError):
    """Too many request headers, or too large in all."""

    http_status = 431


class NotFound(TaskerError):
    http_status = 404


class Conflict(TaskerError):
    http_status = 409


class Unauthorized(TaskerError):
    """No API key, or one that is wrong or revoked."""

    http_status = 401


class Forbidden(TaskerError):
    http_status = 403


class TooManyRequests(TaskerError):
    """A client is over its request rate or its quota of pending work; ``retry_after``
    (whole seconds, when known) becomes the answer's ``Retry-After`` header."""

    http_status = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueUnavailable(TaskerError):
    """SQS could not be reached or refused the call."""

    http_status = 503


class StoreUnavailable(TaskerError):
    """PostgreSQL could not be reached."""

    http_status = 503


class ConfigError(TaskerError):
    """A setting is missing or malformed."""
