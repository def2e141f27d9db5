"""Engine creation and the mapping of driver errors to Tasker's error families."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import StoreUnavailable


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs; use the psycopg2 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10, pre_ping: bool = True) -> Engine:
    """``pre_ping=False`` saves a round trip per transaction (the API's hot path); a connection
    broken by a database restart then fails one transaction, which invalidates the pool, and
    the next one reconnects."""
    return sa.create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        connect_args={"connect_timeout": 3, "application_name": "tasker"},
    )


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, committed on success; connection failures become
    :class:`StoreUnavailable` so callers (and the API's error mapping) see one family."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from exc
    except sa.exc.InterfaceError as exc:
        raise StoreUnavailable(f"database connection lost: {_first_line(exc)}") from exc


@dataclasses.dataclass(frozen=True)
class RawTransaction:
    cursor: Any
    #: survives as long as the database connection (e.g. which statements are prepared on it)
    info: dict[str, Any]


@contextlib.contextmanager
def raw_transaction(engine: Engine) -> Iterator[RawTransaction]:
    """A psycopg2 cursor in autocommit mode on a pooled connection: every statement is its own
    transaction, so one statement (a CTE doing several writes) costs one round trip.

    For the API's hot path only: it skips SQLAlchemy's execution machinery and the separate
    BEGIN and COMMIT round trips. A broken connection is invalidated, not returned to the pool.
    """
    try:
        raw = engine.raw_connection()
    except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg2.OperationalError) as exc:
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from exc
    dbapi: Any = raw.dbapi_connection
    try:
        dbapi.autocommit = True
        cursor = raw.cursor()
        try:
            yield RawTransaction(cursor, raw.info)
        finally:
            cursor.close()
            dbapi.autocommit = False
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raw.invalidate()
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from exc
    finally:
        if raw.dbapi_connection is not None:
            raw.close()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
