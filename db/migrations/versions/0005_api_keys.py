"""api keys: a hashed key per client, revocable and rotatable

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("key_id", sa.String(length=32), nullable=True))
    op.add_column("clients", sa.Column("key_hash", sa.String(length=64), nullable=True))
    op.add_column("clients", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint(op.f("uq_clients_key_id"), "clients", ["key_id"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_clients_key_id"), "clients", type_="unique")
    op.drop_column("clients", "revoked_at")
    op.drop_column("clients", "key_hash")
    op.drop_column("clients", "key_id")
