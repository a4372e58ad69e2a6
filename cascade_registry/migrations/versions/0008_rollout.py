"""rollouts: a candidate version shadowing or serving a canary share beside a model's released version

One row per rollout, kept after it ends (``outcome`` promoted, rolled_back or changed) so that
``registry rollback`` after a promote knows which version to restore. At most one row per model has
``ended_at`` NULL: the registry checks it in the write transaction (writers are serialized).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("live_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("sticky", sa.String(16), nullable=False),
        _ts("started_at"),
        sa.Column("started_by", sa.String(128), nullable=False),
        _ts("ended_at", nullable=True),
        sa.Column("ended_by", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.CheckConstraint("mode IN ('shadow', 'canary')", name="ck_rollouts_mode"),
        sa.CheckConstraint("share > 0 AND share <= 1", name="ck_rollouts_share"),
        sa.Index("ix_rollouts_name", "name", "ended_at"),
    )


def downgrade() -> None:
    op.drop_table("rollouts")
