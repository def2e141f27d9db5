"""The store: the only code that writes SQL. Functions take a SQLAlchemy ``Connection`` that is
already in a transaction (see ``db.engine.transaction``) so callers can group changes, and
return plain frozen dataclasses, never ORM rows."""
