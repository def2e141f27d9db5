"""Engine creation and the mapping of driver errors to Tasker's error families."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    return sa.create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
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


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
