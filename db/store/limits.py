"""Per-client limits: the shared request-rate token buckets, the count of a client's active
tasks for its quota, and the per-client overrides (``tasker clients limits``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.statuses import ACTIVE_TASK_STATUSES

#: the columns of ``clients`` that override a TASKER_* limit (NULL: the setting applies)
OVERRIDES = ("rate_limit_per_s", "rate_limit_burst", "quota_active_tasks")
_ACTIVE = f"status IN ({', '.join(repr(s.value) for s in ACTIVE_TASK_STATUSES)})"  # ix_tasks_client_active


@dataclasses.dataclass(frozen=True)
class Grant:
    #: tokens this call took (0: the bucket had less than one)
    taken: int
    #: tokens left in the bucket afterwards
    tokens: float


@dataclasses.dataclass(frozen=True)
class QuotaState:
    name: str
    #: the client's quota (0: unlimited)
    quota: int
    #: whether the quota is the client's own (``tasker clients limits``) or the setting
    overridden: bool
    #: its pending and scheduled tasks now; None when the quota is unlimited (not counted)
    active: int | None


@dataclasses.dataclass(frozen=True)
class ClientLimits:
    name: str
    rate_limit_per_s: float | None
    rate_limit_burst: int | None
    quota_active_tasks: int | None


# One atomic statement per round trip: refill the bucket from the database's clock (one clock
# for every API process), take up to :want whole tokens (at least one, or none if less than one
# is there), and record what was taken. A new bucket starts full.
_TAKE = text(
    """
    INSERT INTO rate_buckets AS b (client_id, tokens, updated_at, taken)
    VALUES (:client_id, CAST(:burst AS float8) - least(:want, :burst), clock_timestamp(), least(:want, :burst))
    ON CONFLICT (client_id) DO UPDATE SET (tokens, updated_at, taken) = (
        SELECT s.level - s.took, s.now, s.took
        FROM (
            SELECT r.level, r.now,
                   CASE WHEN r.level >= 1 THEN least(:want, floor(r.level))::int ELSE 0 END AS took
            FROM (
                SELECT least(CAST(:burst AS float8),
                             b.tokens + CAST(:rate AS float8)
                                 * greatest(0, extract(epoch FROM c.now - b.updated_at))::float8) AS level,
                       c.now
                FROM (SELECT clock_timestamp() AS now) c
            ) r
        ) s
    )
    RETURNING tokens, taken
    """
)


def take_tokens(conn: Connection, client_id: int, want: int, rate: float, burst: int) -> Grant:
    """Take up to ``want`` tokens from the client's bucket (``rate`` tokens/s up to ``burst``)."""
    row = conn.execute(_TAKE, {"client_id": client_id, "want": want, "rate": rate, "burst": burst}).one()
    return Grant(taken=int(row.taken), tokens=float(row.tokens))


_QUOTA = text(
    f"""
    SELECT c.name, c.quota_active_tasks IS NOT NULL AS overridden,
           COALESCE(c.quota_active_tasks, :default) AS quota,
           CASE WHEN COALESCE(c.quota_active_tasks, :default) > 0
                THEN (SELECT count(*) FROM tasks t WHERE t.client_id = c.id AND t.{_ACTIVE}) END AS active
    FROM clients c WHERE c.id = :client_id
    """
)


def quota_state(conn: Connection, client_id: int, default_quota: int) -> QuotaState:
    """A client's quota and, unless it is unlimited, its active tasks (ix_tasks_client_active)."""
    row = conn.execute(_QUOTA, {"client_id": client_id, "default": default_quota}).one_or_none()
    if row is None:  # not a client (yet): nothing of it is active
        return QuotaState(name=f"#{client_id}", quota=default_quota, overridden=False, active=0)
    return QuotaState(name=row.name, quota=int(row.quota), overridden=bool(row.overridden),
                      active=None if row.active is None else int(row.active))


def set_limits(conn: Connection, name: str, changes: dict[str, Any]) -> ClientLimits | None:
    """Set some of a client's overrides (a None value: back to the setting); None if there is
    no such client. With no changes, reads them."""
    unknown = set(changes) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"not a client limit: {', '.join(sorted(unknown))}")
    columns = ", ".join(OVERRIDES)
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        sql = f"UPDATE clients SET {assignments} WHERE name = :name RETURNING name, {columns}"
    else:
        sql = f"SELECT name, {columns} FROM clients WHERE name = :name"
    row = conn.execute(text(sql), {"name": name, **changes}).one_or_none()
    if row is None:
        return None
    return ClientLimits(row.name, row.rate_limit_per_s, row.rate_limit_burst, row.quota_active_tasks)
