"""per-client limits: request-rate token buckets, quota overrides, an index of active tasks

Revision ID: 0006
Revises: 0005

The new index is built with a plain CREATE INDEX (inside the migration's transaction): it
blocks writes to ``tasks`` while it is built, a few seconds for millions of tasks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('scheduled', 'queued', 'held', 'running', 'paused')"


def upgrade() -> None:
    op.add_column("clients", sa.Column("rate_limit_per_s", sa.Double(), nullable=True))
    op.add_column("clients", sa.Column("rate_limit_burst", sa.Integer(), nullable=True))
    op.add_column("clients", sa.Column("quota_active_tasks", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_clients_limits"), "clients",
        "rate_limit_per_s >= 0 AND rate_limit_burst >= 1 AND quota_active_tasks >= 0",
    )
    op.create_table(
        "rate_buckets",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_rate_buckets_client_id_clients"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_rate_buckets")),
    )
    op.create_index("ix_tasks_client_active", "tasks", ["client_id"], unique=False, postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index("ix_tasks_client_active", table_name="tasks", postgresql_where=sa.text(ACTIVE))
    op.drop_table("rate_buckets")
    op.drop_constraint(op.f("ck_clients_limits"), "clients", type_="check")
    op.drop_column("clients", "quota_active_tasks")
    op.drop_column("clients", "rate_limit_burst")
    op.drop_column("clients", "rate_limit_per_s")
