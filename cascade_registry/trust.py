"""How the registry decides whether a bundle's gate verdict may be believed.

:func:`verify_gate` opens the bundle's ``gate.json`` (a DSSE envelope, :mod:`cascade_registry.attestation`)
and refuses it, with every reason, when

- it is unsigned, signed only by keys the registry does not trust, or its signature does not verify;
- it is about another model (``ref``) or another set of files: the manifest it signed differs from the
  files in the bundle now, or from the manifest the registry stored at register time;
- it misses a check of the default battery (:data:`~cascade_registry.attestation.REQUIRED_CHECKS`);
- its policy is weaker, in any limit, than the registry's minimum policy, or the policy digest is wrong.

The verdict itself (passed or not) is *not* judged here: a verified failing verdict is a valid verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cascade_registry.artifacts import GATE_FILE, GateReport, ModelRef
from cascade_registry.attestation import (
    REQUIRED_CHECKS,
    AttestationError,
    load_public_key,
    manifest_of_statement,
    open_envelope,
    read_envelope,
    report_of,
)
from cascade_registry.entities import TrustedKeyInfo
from cascade_registry.errors import GateError
from cascade_registry.gate_policy import GatePolicy, policy_digest, policy_shortfalls
from cascade_registry.manifest import Manifest, ManifestError, manifest_of

__all__ = ["GateVerdict", "trusted_key_map", "verify_gate"]

_SIGN_FIX = (
    "sign the gate with a trusted key: 'lockgate keygen', 'lockgate registry trust add KEY.pub', "
    "then 'lockgate check BUNDLE --sign-key KEY'"
)


@dataclass(frozen=True)
class GateVerdict:
    """A verified gate verdict: the report, the key that signed it, and the files it vouches for."""

    report: GateReport
    key_id: str
    manifest: Manifest


def trusted_key_map(keys: list[TrustedKeyInfo]) -> dict[str, Ed25519PublicKey]:
    return {k.key_id: load_public_key(k.public_key, f"trusted key {k.key_id}") for k in keys}


def _listing(problems: list[str], limit: int = 4) -> str:
    more = f" (+{len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def verify_gate(
    bundle_dir: Path,
    ref: ModelRef,
    trusted: dict[str, Ed25519PublicKey],
    floor: GatePolicy,
    registered: Manifest | None = None,
) -> GateVerdict:
    """The verified verdict of the bundle at ``bundle_dir``; raises :class:`GateError` saying why not."""
    where = bundle_dir / GATE_FILE
    if not where.exists() and not where.is_symlink():
        raise GateError(
            f"{ref} has no readable gate report ({where})", f"run 'lockgate check {bundle_dir}' first"
        )
    try:
        envelope = read_envelope(where)
        statement, key = open_envelope(envelope, trusted)
        attested = manifest_of_statement(statement)
    except AttestationError as e:
        raise GateError(f"refused: {ref}'s gate report cannot be trusted: {e}", _SIGN_FIX) from None
    predicate = statement.predicate
    if predicate.ref != ref:
        raise GateError(
            f"refused: the gate report in {bundle_dir} is for {predicate.ref}, not {ref}",
            f"run 'lockgate check {bundle_dir}' again",
        )
    try:
        now = manifest_of(bundle_dir)
    except ManifestError as e:
        raise GateError(f"refused: {ref}'s bundle cannot be read safely: {e.problem} ({e.path})") from None
    changed = attested.differences(now)
    if changed:
        raise GateError(
            f"refused: {ref}'s files are not the ones the gate checked: {_listing(changed)}",
            f"run 'lockgate check {bundle_dir}' again on the files you mean to release",
        )
    since = registered.differences(now) if registered is not None else []
    if since:
        raise GateError(
            f"refused: {ref}'s files changed since it was registered: {_listing(since)}",
            "register the changed bundle as a new version",
        )
    missing = [name for name in REQUIRED_CHECKS if name not in {c.name for c in predicate.checks}]
    if missing:
        raise GateError(
            f"refused: {ref}'s gate report lacks the default checks {', '.join(missing)}",
            "run the whole gate ('lockgate check' without a custom check list)",
        )
    if policy_digest(predicate.policy) != predicate.policy_sha256:
        raise GateError(f"refused: {ref}'s gate report has a policy digest that does not match its policy")
    weaker = policy_shortfalls(floor, predicate.policy)
    if weaker:
        raise GateError(
            f"refused: {ref} was gated under a policy weaker than the registry's minimum: {_listing(weaker)}",
            "gate it again with the default policy or a stricter one ('lockgate registry policy show')",
        )
    return GateVerdict(report=report_of(statement), key_id=key, manifest=attested)
