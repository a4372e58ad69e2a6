"""cascade pins and owners: the effective pin of every downstream version on each upstream (the card's at
register time, a revalidated one later), the owner of every model name, and the owner named by a waiver

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cascade_pins",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("consumer_version", sa.Integer, nullable=False),
        sa.Column("upstream", sa.String(64), nullable=False),
        sa.Column("upstream_version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        _ts("recorded_at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Index("ix_cascade_pins_consumer", "consumer", "consumer_version", "upstream"),
    )
    op.create_table(
        "model_owners",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.add_column("waivers", sa.Column("owner", sa.String(128), nullable=True))
    # pins are history, like the audit log: the database refuses to change or delete one
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION cascade_pins_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'cascade_pins is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER cascade_pins_append_only BEFORE UPDATE OR DELETE ON cascade_pins "
            "FOR EACH ROW EXECUTE FUNCTION cascade_pins_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER cascade_pins_no_{verb.lower()} BEFORE {verb} ON cascade_pins "
                "BEGIN SELECT RAISE(ABORT, 'cascade_pins is append-only'); END"
            )
    # what older registries already know: card pins from the card declarations, and each model's owner
    # is whoever registered its first version
    op.execute(
        "INSERT INTO cascade_pins (consumer, consumer_version, upstream, upstream_version, source, evidence, "
        "recorded_at, actor) SELECT c.name, d.consumer_version, d.model_name, d.pinned_version, 'card', '{}', "
        "d.created_at, d.created_by FROM declarations d JOIN consumers c ON c.id = d.consumer_id "
        "WHERE d.source = 'card' AND d.pinned_version IS NOT NULL ORDER BY d.id"
    )
    op.execute(
        "INSERT INTO model_owners (name, owner, created_at, created_by) "
        "SELECT m.name, m.registered_by, m.registered_at, m.registered_by FROM model_versions m "
        "WHERE m.id = (SELECT MIN(f.id) FROM model_versions f WHERE f.name = m.name)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS cascade_pins_append_only ON cascade_pins")
        op.execute("DROP FUNCTION IF EXISTS cascade_pins_append_only()")
    op.drop_column("waivers", "owner")
    op.drop_table("model_owners")
    op.drop_table("cascade_pins")
