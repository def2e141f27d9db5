"""Clients, their API keys and signing secrets."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core import keys


@dataclasses.dataclass(frozen=True)
class Principal:
    client_id: int
    name: str
    role: str
    #: the client's own limits (``tasker clients limits``); None: the TASKER_* setting applies
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None
    quota_active_tasks: int | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclasses.dataclass(frozen=True)
class Issued:
    name: str
    role: str
    key: str
    signing_secret: str


def create(
    conn: Connection, name: str, admin: bool = False, key: str | None = None, *,
    rate_limit_per_s: float | None = None, rate_limit_burst: int | None = None,
    quota_active_tasks: int | None = None,
) -> Issued:
    """A new client (or a client known only by name so far) gets a key. ``key`` adopts a given
    key (the compose stack's bootstrap admin key); the limits, when given, override the
    TASKER_* settings for this client."""
    if key is None:
        key_id, key, key_hash = keys.new_key()
    else:
        found = keys.key_id_of(key)
        if found is None:
            raise ValueError("not a Tasker API key (tk_<id>_<secret>)")
        key_id, key_hash = found, keys.hash_key(key)
    row = conn.execute(
        text(
            """
            INSERT INTO clients (name, role, key_id, key_hash, rate_limit_per_s, rate_limit_burst,
                                 quota_active_tasks)
            VALUES (:name, :role, :key_id, :key_hash, :rate, :burst, :quota)
            ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, key_id = EXCLUDED.key_id,
                key_hash = EXCLUDED.key_hash, revoked_at = NULL,
                rate_limit_per_s = COALESCE(EXCLUDED.rate_limit_per_s, clients.rate_limit_per_s),
                rate_limit_burst = COALESCE(EXCLUDED.rate_limit_burst, clients.rate_limit_burst),
                quota_active_tasks = COALESCE(EXCLUDED.quota_active_tasks, clients.quota_active_tasks)
            WHERE clients.key_hash IS NULL OR clients.key_hash = EXCLUDED.key_hash
            RETURNING name, role, signing_secret
            """
        ),
        {"name": name, "role": "admin" if admin else "client", "key_id": key_id, "key_hash": key_hash,
         "rate": rate_limit_per_s, "burst": rate_limit_burst, "quota": quota_active_tasks},
    ).one_or_none()
    if row is None:
        raise ValueError(f"client {name!r} already has a key; use rotate to issue a new one")
    return Issued(row.name, row.role, key, row.signing_secret)


def rotate(conn: Connection, name: str, secret_too: bool = True) -> Issued | None:
    key_id, key, key_hash = keys.new_key()
    row = conn.execute(
        text(
            """
            UPDATE clients SET key_id = :key_id, key_hash = :key_hash, revoked_at = NULL,
                signing_secret = CASE WHEN CAST(:secret_too AS boolean)
                    THEN replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
                    ELSE signing_secret END
            WHERE name = :name RETURNING name, role, signing_secret
            """
        ),
        {"name": name, "key_id": key_id, "key_hash": key_hash, "secret_too": secret_too},
    ).one_or_none()
    return None if row is None else Issued(row.name, row.role, key, row.signing_secret)


def revoke(conn: Connection, name: str) -> bool:
    result = conn.execute(
        text("UPDATE clients SET revoked_at = now() WHERE name = :name AND revoked_at IS NULL"), {"name": name}
    )
    return bool(result.rowcount)


def list_all(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        text("SELECT name, role, key_id, key_hash IS NOT NULL AS has_key, revoked_at, created_at FROM clients ORDER BY name")
    ).all()
    return [dict(r._mapping) for r in rows]


def authenticate(conn: Connection, key: str) -> Principal | None:
    key_id = keys.key_id_of(key)
    if key_id is None:
        return None
    row = conn.execute(
        text("SELECT id, name, role, key_hash, revoked_at, rate_limit_per_s, rate_limit_burst, quota_active_tasks "
             "FROM clients WHERE key_id = :key_id"),
        {"key_id": key_id},
    ).one_or_none()
    if row is None or row.key_hash is None or row.revoked_at is not None or not keys.matches(key, row.key_hash):
        return None
    return Principal(row.id, row.name, row.role, row.rate_limit_per_s, row.rate_limit_burst, row.quota_active_tasks)
