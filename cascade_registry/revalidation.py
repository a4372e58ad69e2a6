"""The evidence behind a revalidated pin: an in-toto statement signed like the gate's verdict.

``lockgate registry revalidate b:1 --upstream a:2`` re-scores ``b:1`` with ``a:2``'s outputs and, when it
passes, signs this statement with the gate's key (:func:`cascade_registry.attestation.sign_statement`);
:meth:`cascade_registry.Registry.record_pin` refuses a pin without one that verifies against a trusted
key and names exactly the registered files. So a pin only moves when a trusted gate vouched for the
metrics, never by hand.

::

    Statement {"_type": "https://in-toto.io/Statement/v1",
               "subject": [{"name": "b:1/model.onnx", "digest": {"sha256": ...}},
                           {"name": "a:2/model.onnx", "digest": {"sha256": ...}}],
               "predicateType": "https://lockgate.dev/attestation/revalidation/v1",
               "predicate": RevalidationPredicate}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_registry.artifacts import MODEL_FILE, CheckResult, ModelRef
from cascade_registry.attestation import (
    STATEMENT_TYPE,
    AttestationError,
    Envelope,
    ResourceDescriptor,
    payload_of,
    verify_signature,
)

__all__ = [
    "REVALIDATION_PREDICATE_TYPE",
    "RevalidationPredicate",
    "RevalidationStatement",
    "open_revalidation",
    "revalidation_statement",
]

REVALIDATION_PREDICATE_TYPE = "https://lockgate.dev/attestation/revalidation/v1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RevalidationPredicate(_Model):
    """``consumer`` scored with ``upstream``'s outputs (instead of ``previous``'s) under its gate policy."""

    consumer: ModelRef
    upstream: ModelRef
    previous: ModelRef = Field(description="the effective pin before")
    passed: bool
    checks: list[CheckResult] = Field(description="the gate's quality checks on the re-scored held-out rows")
    before: dict[str, Any] = Field(description="the metrics with the previous pin")
    after: dict[str, Any] = Field(description="the metrics with the new pin")
    policy_sha256: str = Field(description="digest of the consumer's gate policy the checks ran under")
    holdout_rows: int
    tool_version: str
    created_at: datetime


class RevalidationStatement(_Model):
    type_: str = Field(STATEMENT_TYPE, alias="_type")
    subject: list[ResourceDescriptor]
    predicateType: str = REVALIDATION_PREDICATE_TYPE  # noqa: N815 - the in-toto field name
    predicate: RevalidationPredicate

    def sha256(self) -> dict[str, str]:
        """Model ref text -> the sha256 of its model.onnx the statement is about."""
        suffix = f"/{MODEL_FILE}"
        return {s.name.removesuffix(suffix): s.digest.get("sha256", "") for s in self.subject}


def revalidation_statement(
    predicate: RevalidationPredicate, consumer_sha256: str, upstream_sha256: str
) -> RevalidationStatement:
    subject = [
        ResourceDescriptor(name=f"{ref}/{MODEL_FILE}", digest={"sha256": sha})
        for ref, sha in ((predicate.consumer, consumer_sha256), (predicate.upstream, upstream_sha256))
    ]
    return RevalidationStatement(subject=subject, predicate=predicate)


def open_revalidation(raw: Any, trusted: dict[str, Ed25519PublicKey]) -> tuple[RevalidationStatement, str]:
    """Verify a revalidation envelope (its JSON object) against ``trusted``; return (statement, key id)."""
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError:
        raise AttestationError("the evidence's attestation is not a DSSE envelope") from None
    signer = verify_signature(envelope, trusted)
    try:
        statement = RevalidationStatement.model_validate_json(payload_of(envelope))
    except ValidationError as e:
        raise AttestationError(
            f"the payload is not a revalidation statement ({e.errors()[0]['msg']})"
        ) from None
    if statement.type_ != STATEMENT_TYPE or statement.predicateType != REVALIDATION_PREDICATE_TYPE:
        raise AttestationError(f"the statement is not a {REVALIDATION_PREDICATE_TYPE} statement")
    return statement, signer
