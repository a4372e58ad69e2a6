"""The registry's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create and evolve them;
this module is the code's view of the current revision."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "api_keys",
    "audit_log",
    "captured_predictions",
    "cascade_pins",
    "console_users",
    "consumers",
    "declarations",
    "drift_checks",
    "feedback_labels",
    "metadata",
    "model_owners",
    "model_versions",
    "registry_config",
    "registry_state",
    "rollouts",
    "transitions",
    "trusted_keys",
    "waivers",
]

metadata = MetaData()


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


#: one row (id=1); ``generation`` is bumped first thing in every write transaction, which also
#: serializes writers and lets readers in other processes notice changes cheaply.
registry_state = Table(
    "registry_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("bundle_path", Text, nullable=False),
    Column("onnx_sha256", String(64), nullable=False, unique=True),
    Column("card_json", Text, nullable=False),
    _ts("registered_at"),
    Column("registered_by", String(128), nullable=False),
    _ts("released_at", nullable=True),
    Column("released_by", String(128), nullable=True),
    _ts("status_at"),
    Column("status_by", String(128), nullable=False),
    Column("stale", Boolean, nullable=False, default=False),
    Column("stale_reason", Text, nullable=True),
    Column("manifest_json", Text, nullable=True),  # every file of the bundle at register time
    Column("gate_key_id", String(64), nullable=True),  # the trusted key whose verdict was recorded
    # transfer learning: the version whose weights initialized this one (card.parent; None: from scratch)
    Column("parent_name", String(64), nullable=True, index=True),
    Column("parent_version", Integer, nullable=True),
    UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    _ts("at"),
    Column("reason", Text, nullable=False, default=""),
)

consumers = Table(
    "consumers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("owner", String(128), nullable=False),
    _ts("created_at"),
    Column("created_by", String(128), nullable=False),
    _ts("revoked_at", nullable=True),
    Column("revoked_by", String(128), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer_id", Integer, ForeignKey("consumers.id"), nullable=False, index=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("salt", String(64), nullable=False),
    Column("key_hash", String(128), nullable=False),
    _ts("created_at"),
    Column("created_by", String(128), nullable=False),
    _ts("revoked_at", nullable=True),
    Column("revoked_by", String(128), nullable=True),
)

declarations = Table(
    "declarations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer_id", Integer, ForeignKey("consumers.id"), nullable=False, index=True),
    Column("model_name", String(64), nullable=False, index=True),
    Column("versions", String(128), nullable=True),
    Column("source", String(8), nullable=False),
    Column("consumer_version", Integer, nullable=False, default=0),
    Column("pinned_version", Integer, nullable=True),
    _ts("created_at"),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("consumer_id", "model_name", "consumer_version", name="uq_declarations"),
)

waivers = Table(
    "waivers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    _ts("at"),
    Column("affected", Text, nullable=False),
    Column("owner", String(128), nullable=True),  # the owner who waived (None: before 0004)
)

#: append-only pins: the effective pin of ``consumer:consumer_version`` on ``upstream`` is its newest row
#: (``source`` 'card' at register time, 'revalidated' with signed evidence later)
cascade_pins = Table(
    "cascade_pins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(64), nullable=False),
    Column("consumer_version", Integer, nullable=False),
    Column("upstream", String(64), nullable=False),
    Column("upstream_version", Integer, nullable=False),
    Column("source", String(16), nullable=False),
    Column("evidence", Text, nullable=False),
    _ts("recorded_at"),
    Column("actor", String(128), nullable=False),
    Index("ix_cascade_pins_consumer", "consumer", "consumer_version", "upstream"),
)

#: who answers for a model name: set at its first register (``--owner``, default the actor); the only
#: person whose waiver the registry accepts for a release that affects that model
model_owners = Table(
    "model_owners",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    _ts("created_at"),
    Column("created_by", String(128), nullable=False),
)

#: the public keys whose signed gate verdicts the registry accepts (removed keys are kept, marked)
trusted_keys = Table(
    "trusted_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(64), nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("label", String(128), nullable=False),
    _ts("added_at"),
    Column("added_by", String(128), nullable=False),
    _ts("removed_at", nullable=True),
    Column("removed_by", String(128), nullable=True),
)

#: named settings of the registry itself, e.g. ``min_policy`` (JSON of the minimum gate policy)
registry_config = Table(
    "registry_config",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    _ts("updated_at"),
    Column("updated_by", String(128), nullable=False),
)

#: append-only: the migrations install triggers refusing UPDATE, DELETE and (PostgreSQL) TRUNCATE.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _ts("at"),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("details", Text, nullable=False),
)

#: people who may log in to the web console (``lockgate console``): a role and a salted scrypt hash
console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("password_hash", String(128), nullable=False),
    _ts("created_at"),
    Column("created_by", String(128), nullable=False),
    _ts("disabled_at", nullable=True),
)

#: production feedback (migration 0005): answered rows the gateway sampled, written without bumping the
#: generation (a capture is not a change of what is served)
captured_predictions = Table(
    "captured_predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("row", Integer, nullable=False),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("consumer", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    _ts("at"),
    Column("inputs_json", Text, nullable=False),
    Column("label", String(256), nullable=False),
    Column("probabilities_json", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    UniqueConstraint("request_id", "row", "role", name="uq_captured_request_row_role"),
    Index("ix_captured_model_version_at", "model", "version", "at"),
)

#: the true classes consumers send back (POST /feedback, ``lockgate feedback import``)
feedback_labels = Table(
    "feedback_labels",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("row", Integer, nullable=False),
    Column("consumer", String(128), nullable=False),
    Column("label", String(256), nullable=False),
    Column("source", String(16), nullable=False),
    _ts("at"),
    UniqueConstraint("request_id", "row", "consumer", name="uq_feedback_request_row_consumer"),
)

#: every ``lockgate monitor --drift`` run: the figures, the policy's threshold and whether it marked stale
drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    _ts("at"),
    Column("auc", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("stale", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("figures_json", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_drift_checks_model_version", "model", "version"),
)

#: shadow and canary rollouts: a candidate beside a model's released (live) version; ``ended_at`` NULL is
#: the one in progress (at most one per model), the ended ones say how they ended (``outcome``)
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("live_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("mode", String(8), nullable=False),
    Column("share", Float, nullable=False),
    Column("sticky", String(16), nullable=False),
    _ts("started_at"),
    Column("started_by", String(128), nullable=False),
    _ts("ended_at", nullable=True),
    Column("ended_by", String(128), nullable=True),
    Column("outcome", String(16), nullable=True),
    CheckConstraint("mode IN ('shadow', 'canary')", name="ck_rollouts_mode"),
    CheckConstraint("share > 0 AND share <= 1", name="ck_rollouts_share"),
    Index("ix_rollouts_name", "name", "ended_at"),
)
