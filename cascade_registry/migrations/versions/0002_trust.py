"""trust chain: trusted gate keys, the minimum gate policy, the manifest stored at register time, and an
audit log that TRUNCATE cannot empty

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("manifest_json", sa.Text, nullable=True))
    op.add_column("model_versions", sa.Column("gate_key_id", sa.String(64), nullable=True))
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(64), nullable=False, unique=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        _ts("added_at"),
        sa.Column("added_by", sa.String(128), nullable=False),
        _ts("removed_at", nullable=True),
        sa.Column("removed_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "registry_config",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        _ts("updated_at"),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # row triggers do not fire on TRUNCATE; a statement-level trigger does
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_table("registry_config")
    op.drop_table("trusted_keys")
    op.drop_column("model_versions", "gate_key_id")
    op.drop_column("model_versions", "manifest_json")
