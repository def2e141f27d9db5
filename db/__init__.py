"""PostgreSQL: SQLAlchemy models, the engine, Alembic migrations and the store layer (the only
code that writes SQL)."""
