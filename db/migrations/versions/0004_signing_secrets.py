"""signing secrets: each client signs its HTTP task calls with its own secret

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 64 hex characters from two random UUIDs (gen_random_uuid uses a strong random source)
SECRET = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"


def upgrade() -> None:
    op.add_column("clients", sa.Column("signing_secret", sa.Text(), server_default=sa.text(SECRET), nullable=False))


def downgrade() -> None:
    op.drop_column("clients", "signing_secret")
