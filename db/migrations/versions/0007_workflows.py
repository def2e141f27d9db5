"""workflows: sequences of tasks with a condition check and a fallback

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("spec", postgresql.JSONB(), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("checks", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_at", TZ, nullable=True),
        sa.Column("current_task_id", sa.String(32), nullable=True),
        sa.Column("last_result", postgresql.JSONB(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.CheckConstraint("status IN ('scheduled', 'running', 'success', 'failed', 'cancelled')",
                           name=op.f("ck_workflows_status")),
        sa.CheckConstraint("phase IN ('step', 'check', 'fallback', 'done')", name=op.f("ck_workflows_phase")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_workflows_client_id_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_index("ix_workflows_client_seq", "workflows", ["client_id", "seq"])
    op.create_index("ix_workflows_seq", "workflows", ["seq"])
    op.create_index("ix_workflows_active", "workflows", ["next_at"],
                    postgresql_where=sa.text("status IN ('scheduled', 'running')"))
    op.create_table(
        "workflow_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("workflow_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('step', 'check', 'fallback')", name=op.f("ck_workflow_items_kind")),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name=op.f("fk_workflow_items_workflow_id_workflows"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_items")),
    )
    op.create_index("uq_workflow_items_position", "workflow_items", ["workflow_id", "kind", "position", "attempt"],
                    unique=True)


def downgrade() -> None:
    op.drop_table("workflow_items")
    op.drop_table("workflows")
