"""lineage: the parent a version was initialized from (transfer learning, ``lockgate train --init-from``)

Revision ID: 0007
Revises: 0005 (0006 was never used: the rollout migration is 0008)
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("parent_name", sa.String(64), nullable=True))
    op.add_column("model_versions", sa.Column("parent_version", sa.Integer, nullable=True))
    op.create_index("ix_model_versions_parent_name", "model_versions", ["parent_name"])


def downgrade() -> None:
    op.drop_index("ix_model_versions_parent_name", table_name="model_versions")
    op.drop_column("model_versions", "parent_version")
    op.drop_column("model_versions", "parent_name")
