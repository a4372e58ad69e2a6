"""production feedback: captured predictions, the labels consumers send back, and drift checks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "captured_predictions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _ts("at"),
        sa.Column("inputs_json", sa.Text, nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("probabilities_json", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.UniqueConstraint("request_id", "row", "role", name="uq_captured_request_row_role"),
        sa.Index("ix_captured_model_version_at", "model", "version", "at"),
    )
    op.create_table(
        "feedback_labels",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _ts("at"),
        sa.UniqueConstraint("request_id", "row", "consumer", name="uq_feedback_request_row_consumer"),
    )
    op.create_table(
        "drift_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("at"),
        sa.Column("auc", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("figures_json", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Index("ix_drift_checks_model_version", "model", "version"),
    )


def downgrade() -> None:
    op.drop_table("drift_checks")
    op.drop_table("feedback_labels")
    op.drop_table("captured_predictions")
