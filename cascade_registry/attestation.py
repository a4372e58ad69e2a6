"""The gate's verdict as a signed attestation: an in-toto Statement in a DSSE Envelope, signed with Ed25519.

::

    Envelope  {"payloadType": "application/vnd.in-toto+json", "payload": base64(Statement),
               "signatures": [{"keyid": KEYID, "sig": base64(Ed25519(PAE(payloadType, payload)))}]}
    Statement {"_type": "https://in-toto.io/Statement/v1",
               "subject": [{"name": "model.onnx", "digest": {"sha256": ...}, "annotations": {...}}, ...],
               "predicateType": "https://lockgate.dev/attestation/gate/v1",
               "predicate": GatePredicate}

The subject is the manifest of *every* file of the bundle (:func:`cascade_registry.manifest.manifest_of`);
the predicate holds the verdict, every check's result, the policy and its digest, the tool and its version,
the isolation the sandbox had, and the time. The signature covers DSSE's pre-authentication encoding
(PAE), so neither the payload type nor the payload can be swapped. This is the shape of in-toto
attestations and Sigstore bundles; the key handling is deliberately simple (a PEM key pair, trusted keys
kept by the registry, see :mod:`cascade_registry.trust`).

stdlib + pydantic + cryptography; imports only the schema modules below it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_registry.artifacts import MODEL_FILE, CheckResult, GateReport, ModelRef
from cascade_registry.manifest import Manifest, ManifestEntry, ManifestError, read_bounded

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "REQUIRED_CHECKS",
    "STATEMENT_TYPE",
    "AttestationError",
    "decode_statement",
    "Envelope",
    "GatePredicate",
    "ResourceDescriptor",
    "Signature",
    "Statement",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "manifest_of_statement",
    "open_envelope",
    "payload_of",
    "pae",
    "private_key_pem",
    "public_key_pem",
    "read_envelope",
    "report_of",
    "sign_statement",
    "statement_for",
    "verify_signature",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://lockgate.dev/attestation/gate/v1"
#: gate.json holds a few KB; anything near this is hostile
MAX_ENVELOPE_BYTES = 16 * 2**20
#: every check of the default battery, by name: a verdict missing any of them is refused by the registry
REQUIRED_CHECKS: tuple[str, ...] = (
    "file.size",
    "card.schema",
    "file.sha256",
    "file.parse",
    "file.external_data",
    "file.checker",
    "file.opset",
    "file.domains",
    "load",
    "contract",
    "inputs",
    "resources",
    "determinism",
    "parity",
    "quality",
    "calibration",
    "quality.regression",
    "card.completeness",
    "serve",
)


class AttestationError(Exception):
    """An envelope that is malformed, unsigned, signed by an unknown key, or whose signature is wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ResourceDescriptor(_Model):
    name: str
    digest: dict[str, str]
    annotations: dict[str, Any] = Field(default_factory=dict)


class GatePredicate(_Model):
    """What the gate decided, under which policy, with which tool."""

    ref: ModelRef | None
    passed: bool
    checks: list[CheckResult]
    policy: dict[str, Any]
    policy_sha256: str
    tool: str = "lockgate check"
    tool_version: str
    isolation: str = Field("", description="how the sandboxed worker was isolated")
    holdout_sha256: str | None = Field(None, description="sha256 of the --holdout file scored, if one was")
    created_at: datetime


class Statement(_Model):
    type_: str = Field(STATEMENT_TYPE, alias="_type")
    subject: list[ResourceDescriptor]
    predicateType: str = PREDICATE_TYPE  # noqa: N815 - the in-toto field name
    predicate: GatePredicate


class Signature(_Model):
    keyid: str
    sig: str


class Envelope(_Model):
    payloadType: str = PAYLOAD_TYPE  # noqa: N815 - the DSSE field name
    payload: str
    signatures: list[Signature] = Field(default_factory=list)


# --------------------------------------------------------------------------------------- keys
def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The first 16 hex digits of the sha256 of the raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(data: bytes, source: str = "the signing key") -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise AttestationError(f"{source} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AttestationError(f"{source} is not an Ed25519 key (make one with 'lockgate keygen')")
    return key


def load_public_key(data: bytes | str, source: str = "the public key") -> Ed25519PublicKey:
    raw = data.encode("ascii", errors="replace") if isinstance(data, str) else data
    try:
        key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError) as e:
        raise AttestationError(f"{source} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AttestationError(f"{source} is not an Ed25519 public key (make one with 'lockgate keygen')")
    return key


# --------------------------------------------------------------------------------------- DSSE
def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement_for(manifest: Manifest, predicate: GatePredicate) -> Statement:
    subject = [
        ResourceDescriptor(name=f.path, digest={"sha256": f.sha256}, annotations={"size": f.size})
        for f in manifest.files
    ]
    return Statement(subject=subject, predicate=predicate)


def manifest_of_statement(statement: Statement) -> Manifest:
    """The bundle manifest a statement's subject describes."""
    try:
        return Manifest(
            files=sorted(
                (
                    ManifestEntry(
                        path=s.name, size=int(s.annotations.get("size", 0)), sha256=s.digest.get("sha256", "")
                    )
                    for s in statement.subject
                ),
                key=lambda e: e.path,
            )
        )
    except (ValidationError, TypeError, ValueError) as e:
        raise AttestationError(f"the statement's subject is not a file manifest ({e})") from None


def sign_statement(statement: BaseModel, key: Ed25519PrivateKey | None) -> Envelope:
    """The DSSE envelope of ``statement`` (a gate statement, or any in-toto statement model), signed by
    ``key`` (unsigned when ``key`` is None)."""
    payload = statement.model_dump_json(by_alias=True).encode("utf-8")
    signatures = []
    if key is not None:
        sig = key.sign(pae(PAYLOAD_TYPE, payload))
        signatures.append(Signature(keyid=key_id(key), sig=base64.b64encode(sig).decode("ascii")))
    return Envelope(payload=base64.b64encode(payload).decode("ascii"), signatures=signatures)


def payload_of(envelope: Envelope) -> bytes:
    try:
        return base64.b64decode(envelope.payload, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("the envelope's payload is not base64") from None


def decode_statement(envelope: Envelope) -> Statement:
    """The statement inside ``envelope``, NOT verified (for display only)."""
    if envelope.payloadType != PAYLOAD_TYPE:
        raise AttestationError(f"payloadType {envelope.payloadType!r} is not {PAYLOAD_TYPE!r}")
    try:
        statement = Statement.model_validate_json(payload_of(envelope))
    except ValidationError as e:
        raise AttestationError(f"the payload is not a gate statement ({e.errors()[0]['msg']})") from None
    if statement.type_ != STATEMENT_TYPE or statement.predicateType != PREDICATE_TYPE:
        raise AttestationError(f"the statement is not a {PREDICATE_TYPE} statement")
    return statement


def open_envelope(envelope: Envelope, trusted: dict[str, Ed25519PublicKey]) -> tuple[Statement, str]:
    """Verify ``envelope`` against the ``trusted`` keys (key id -> key); return (statement, key id).

    Refuses an unsigned envelope, one signed only by unknown keys, and a wrong signature."""
    signer = verify_signature(envelope, trusted)
    return decode_statement(envelope), signer


def verify_signature(envelope: Envelope, trusted: dict[str, Ed25519PublicKey]) -> str:
    """The id of the trusted key whose signature over ``envelope`` verifies; raises
    :class:`AttestationError` for an unsigned envelope, unknown keys only, or a wrong signature."""
    if not envelope.signatures:
        raise AttestationError("the gate report is not signed")
    payload = payload_of(envelope)
    message = pae(envelope.payloadType, payload)
    unknown = []
    for signature in envelope.signatures:
        key = trusted.get(signature.keyid)
        if key is None:
            unknown.append(signature.keyid)
            continue
        try:
            key.verify(base64.b64decode(signature.sig, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            raise AttestationError(
                f"the signature by key {signature.keyid} does not verify (the report was altered)"
            ) from None
        return signature.keyid
    raise AttestationError(f"the gate report is signed by unknown key(s) {', '.join(unknown)}")


def read_envelope(path: Path | str) -> Envelope:
    """Parse an envelope file (a regular file, not a link, at most :data:`MAX_ENVELOPE_BYTES`)."""
    try:
        data = read_bounded(path, MAX_ENVELOPE_BYTES)
        return Envelope.model_validate_json(data)
    except ManifestError as e:
        raise AttestationError(str(e)) from None
    except ValidationError:
        raise AttestationError(f"{path} is not a signed gate report (DSSE envelope)") from None


def report_of(statement: Statement) -> GateReport:
    """The plain :class:`GateReport` view of a statement (for tables, JUnit and status)."""
    p = statement.predicate
    model = next((s.digest.get("sha256", "") for s in statement.subject if s.name == MODEL_FILE), "")
    return GateReport(
        ref=p.ref,
        onnx_sha256=model,
        passed=p.passed,
        checks=p.checks,
        policy=p.policy,
        created_at=p.created_at,
        tool=p.tool,
    )
