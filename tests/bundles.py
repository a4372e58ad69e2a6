"""Small real bundles for every test folder: made by the real training code and the real gate.

Signing: every gate run here signs with :data:`TEST_KEY`, one Ed25519 key fixed for the whole test
session (derived from a constant seed, so runs are reproducible). A registry believes it once told to:
:func:`trust_test_key` (or open it with :func:`open_trusting`). :func:`write_attestation` writes a signed
verdict by hand (the shape the real gate writes) for tests that need a given outcome without running the
gate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cascade_registry.artifacts import (
    GATE_FILE,
    MODEL_FILE,
    CheckResult,
    GateReport,
    ModelRef,
    write_json_atomic,
)
from cascade_registry.attestation import (
    REQUIRED_CHECKS,
    GatePredicate,
    decode_statement,
    private_key_pem,
    public_key_pem,
    read_envelope,
    report_of,
    sign_statement,
    statement_for,
)
from cascade_registry.gate_policy import GatePolicy, policy_digest
from cascade_registry.manifest import manifest_of

#: the session's gate key (deterministic: derived from a fixed seed)
TEST_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"lockgate tests gate key").digest())
TEST_PUBLIC_PEM = public_key_pem(TEST_KEY)


def read_gate(bundle: Path) -> GateReport:
    """The GateReport view of the bundle's gate.json (the envelope's statement, not verified)."""
    return report_of(decode_statement(read_envelope(bundle / GATE_FILE)))


def write_test_key(directory: Path) -> Path:
    """Write :data:`TEST_KEY` as a PEM file (for ``lockgate check --sign-key``); return its path."""
    path = directory / "test-gate-key"
    path.write_bytes(private_key_pem(TEST_KEY))
    path.chmod(0o600)
    return path


def trust_test_key(registry: Any) -> Any:
    """Make ``registry`` (a :class:`cascade_registry.Registry`) accept verdicts signed by TEST_KEY."""
    if not any(k.public_key == TEST_PUBLIC_PEM for k in registry.trusted_keys()):
        registry.trust_key(TEST_PUBLIC_PEM, label="tests", actor="tests")
    return registry


def open_trusting(url: str | None, **kwargs: Any) -> Any:
    """``Registry.open(url)`` that trusts :data:`TEST_KEY`."""
    from cascade_registry import Registry

    return trust_test_key(Registry.open(url, **kwargs))


def write_attestation(
    bundle: Path,
    ref: ModelRef | None,
    passed: bool = True,
    *,
    key: Ed25519PrivateKey | None = TEST_KEY,
    checks: list[str] | None = None,
    policy: dict[str, Any] | None = None,
    model_sha256: str | None = None,
) -> GateReport:
    """Write a signed gate.json by hand: every default check ``pass`` (or ``quality`` ``fail`` when not
    ``passed``), the default policy, the manifest of the bundle's files as they are now (with
    model.onnx's digest replaced by ``model_sha256`` when given: a verdict about another model file)."""
    names = list(REQUIRED_CHECKS) if checks is None else checks
    results = [
        CheckResult(name=n, status="fail" if (not passed and n == "quality") else "pass") for n in names
    ]
    used = GatePolicy().model_dump(mode="json") if policy is None else policy
    predicate = GatePredicate(
        ref=ref,
        passed=passed,
        checks=results,
        policy=used,
        policy_sha256=policy_digest(used),
        tool_version="tests",
        created_at=datetime.now(UTC),
    )
    manifest = manifest_of(bundle)
    if model_sha256 is not None:
        swap = {"sha256": model_sha256}
        files = [f.model_copy(update=swap) if f.path == MODEL_FILE else f for f in manifest.files]
        manifest = manifest.model_copy(update={"files": files})
    statement = statement_for(manifest, predicate)
    envelope = sign_statement(statement, key)
    write_json_atomic(bundle / GATE_FILE, envelope.model_dump(mode="json", by_alias=True))
    return report_of(statement)


def train_bundle(
    out: Path,
    *,
    name: str = "demo",
    version: int = 1,
    seed: int = 0,
    model: str = "logistic_regression",
    calibration: str = "sigmoid",
    trials: int = 2,
    data: str = "breast_cancer",
    calibration_cv: int = 0,
) -> Path:
    """Train (``training.train``) a small bundle into ``out/<name>-<version>`` and return its path.

    One calibration split (``calibration_cv=0``) unless a test is about cross-fitting: a K-fold cross-fit
    trains K more models and exports a K-times larger graph (slower to gate and to serve)."""
    from training import TrainConfig, train

    return train(
        TrainConfig(
            data=data,
            model=model,
            calibration=calibration,
            calibration_cv=calibration_cv,
            trials=trials,
            seed=seed,
            name=name,
            version=version,
            out=out,
            progress=False,
        )
    )


def gate_bundle(bundle: Path) -> GateReport:
    """Run the real safety gate (``safety.run_gate``) on ``bundle``, write the gate.json signed by
    :data:`TEST_KEY`, demand a pass."""
    from safety import GatePolicy as SafetyPolicy
    from safety import run_gate

    report = run_gate(bundle, SafetyPolicy(), sign_key=TEST_KEY)
    assert report.passed, [c for c in report.checks if c.status != "pass"]
    return report
