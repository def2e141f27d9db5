"""The Alembic migrations produce exactly the schema of the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from db.engine import normalise_url
from db.migrate import current
from db.models import Base


def test_migrations_produce_exactly_the_models_schema(database_url: str) -> None:
    engine = create_engine(normalise_url(database_url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff: list[Any] = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_database_is_at_the_head_revision(database_url: str) -> None:
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert current(database_url) == head
