"""Re-scoring a downstream version with another upstream version's outputs (``lockgate registry
revalidate``, :mod:`safety.revalidate`): may its pin move?

Recomputes the new upstream version's outputs on the downstream version's held-out rows (the upstream's
input columns are raw columns of the downstream model, so they are in its ``reference.npz``), by running
the upstream's registered ``model.onnx`` in the gate's sandbox; replaces the upstream-derived features with
them; and scores the downstream model through the gate's own quality checks (``quality``, ``calibration``
and their prerequisites, via :func:`safety.harness.run_gate` with the rows as ``--holdout``) under the
policy of its recorded gate verdict. It passes when those checks pass and the policy's metric is no more
than ``quality.max_regression`` below the one with the current pin (the pin's evidence, or the gate
verdict for a card pin).

A pass is signed with the gate's key (a revalidation statement, :mod:`cascade_registry.revalidation`) and
recorded as the new pin (:meth:`cascade_registry.Registry.record_pin`, which refuses unsigned evidence).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from cascade_registry.artifacts import (
    CheckResult,
    FeatureSpec,
    GateReport,
    ModelCard,
    ModelRef,
    UpstreamRef,
    upstream_feature_names,
)
from cascade_registry.attestation import sign_statement
from cascade_registry.entities import ModelVersionInfo, PinInfo
from cascade_registry.gate_policy import policy_digest
from cascade_registry.revalidation import RevalidationPredicate, revalidation_statement
from safety.checks import checks_for
from safety.checks.runtime import case_failure
from safety.context import GateContext, Reference
from safety.errors import RevalidationError
from safety.harness import run_gate, tool_version
from safety.isolation import Isolation
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase

__all__ = ["QUALITY_CHECKS", "RevalidationResult", "revalidate"]

#: the gate checks a revalidation runs (with every prerequisite they name)
QUALITY_CHECKS = ("quality", "calibration")


class RevalidationResult(BaseModel):
    """The outcome: metrics with the previous pin and with the new one, the checks, the pin if recorded."""

    model_config = ConfigDict(frozen=True)

    consumer: ModelRef
    upstream: ModelRef
    previous: ModelRef
    passed: bool
    before: dict[str, Any]
    after: dict[str, Any]
    checks: list[CheckResult]
    problems: list[str]
    holdout_rows: int
    pin: PinInfo | None = None


def _metrics(checks: list[CheckResult]) -> dict[str, Any]:
    """The numbers of the quality checks' results, flat (``f1_macro``, ``ece``, ``brier``, ...)."""
    out: dict[str, Any] = {}
    for c in checks:
        if c.name in QUALITY_CHECKS and isinstance(c.value, dict):
            out.update({k: v for k, v in c.value.items() if isinstance(v, int | float)})
    return out


def _column(card: ModelCard, name: str) -> tuple[FeatureSpec, int]:
    """``name``'s spec in ``card`` and its index in its tensor (``input`` or ``categorical``)."""
    numeric = [f.name for f in card.numeric_features]
    categorical = [f.name for f in card.categorical_features]
    spec = next(f for f in card.features if f.name == name)
    return spec, (numeric.index(name) if spec.is_numeric else categorical.index(name))


def _upstream_batch(consumer: ModelCard, upstream: ModelCard, ref: Reference) -> SandboxCase:
    """The upstream's input rows, taken by column name from the consumer's held-out rows."""
    raw = {f.name: f for f in consumer.features if f.upstream is None}
    numeric, categorical = [], []
    for f in upstream.features:
        mine = raw.get(f.name)
        if mine is None or mine.is_numeric != f.is_numeric:
            raise RevalidationError(
                f"{upstream.ref} needs the {f.kind} column {f.name!r}, which {consumer.ref} does not have as "
                "a raw column of that kind",
                f"retrain {consumer.ref.name} on a table holding {upstream.ref}'s inputs",
            )
        _, i = _column(consumer, f.name)
        if f.is_numeric:
            numeric.append(ref.holdout_inputs[:, i])
        else:
            assert ref.holdout_categorical is not None
            categorical.append(ref.holdout_categorical[:, i])
    rows = len(ref.holdout_labels)
    x = np.stack(numeric, axis=1).astype(np.float32) if numeric else np.zeros((rows, 0), np.float32)
    cats = np.stack(categorical, axis=1) if categorical else None
    return SandboxCase("upstream", np.ascontiguousarray(x), categorical=cats)


def _derived(edge: UpstreamRef, upstream: ModelCard, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feature name -> column, named as the card contract names them (``a__p_CLASS`` / ``a__label``)."""
    names = upstream_feature_names(upstream.ref.name, upstream.classes, edge.output)
    if names != list(edge.features):
        raise RevalidationError(
            f"{upstream.ref} produces the features {names}, but the consumer was trained on "
            f"{list(edge.features)}",
            "the upstream's classes changed: retrain the downstream model instead",
        )
    if edge.output == "label":
        return {names[0]: np.asarray(upstream.classes)[out["label"].astype(np.int64)].astype(str)}
    probs = out["probabilities"].astype(np.float32)
    first = probs.shape[1] - len(names)  # binary: only the positive class's column
    return {name: probs[:, first + k] for k, name in enumerate(names)}


def _holdout_file(consumer: ModelCard, ref: Reference, columns: dict[str, np.ndarray], path: Path) -> None:
    inputs = ref.holdout_inputs.copy()
    cats = None if ref.holdout_categorical is None else ref.holdout_categorical.copy()
    for name, values in columns.items():
        spec, i = _column(consumer, name)
        if spec.is_numeric:
            inputs[:, i] = values
        else:
            assert cats is not None
            cats[:, i] = values
    arrays = {"holdout_inputs": inputs, "holdout_labels": ref.holdout_labels}
    if ref.holdout_segments is not None:
        arrays["holdout_segments"] = ref.holdout_segments
    if cats is not None:
        arrays["holdout_categorical_inputs"] = cats
    np.savez(path, **arrays)


def _rescore(
    consumer: ModelVersionInfo, upstream: ModelVersionInfo, policy: GatePolicy, isolation: Isolation | None
) -> tuple[GateReport, int]:
    """Run the quality battery on the consumer with the upstream's outputs; (report, held-out rows)."""
    card = consumer.card
    edge = next(u for u in card.upstream if u.name == upstream.ref.name)
    if not edge.features:
        raise RevalidationError(
            f"{consumer.ref}'s card does not say which features {edge.name} feeds (an older card)",
            f"retrain it with 'lockgate train --upstream {upstream.ref}'",
        )
    bundle = Path(consumer.bundle_path)
    ref = GateContext(bundle, policy, isolation=isolation).reference()
    ctx = GateContext(Path(upstream.bundle_path), policy, isolation=isolation)
    run = ctx.run_model([_upstream_batch(card, upstream.card, ref)])
    failure = case_failure(run, "upstream")
    if failure:
        raise RevalidationError(f"{upstream.ref} could not be run on {consumer.ref}'s rows: {failure}")
    columns = _derived(edge, upstream.card, run.outputs["upstream"])
    with tempfile.TemporaryDirectory(prefix="lockgate-revalidate-") as tmp:
        holdout = Path(tmp) / f"{consumer.ref.dirname}-on-{upstream.ref.dirname}.npz"  # named in notes
        _holdout_file(card, ref, columns, holdout)
        report = run_gate(
            bundle,
            policy,
            write=False,
            checks=checks_for(QUALITY_CHECKS),
            holdout=holdout,
            isolation=isolation,
        )
    return report, len(ref.holdout_labels)


def _judge(report: GateReport, before: dict[str, Any], policy: GatePolicy, previous: ModelRef) -> list[str]:
    problems = [f"{c.name}: {c.message}" for c in report.checks if c.status not in ("pass", "skip")]
    q, after = policy.quality, _metrics(report.checks)
    if q.metric in before and q.metric in after and after[q.metric] < before[q.metric] - q.max_regression:
        drop = before[q.metric] - after[q.metric]
        problems.append(
            f"{q.metric} {after[q.metric]:.4f} is {drop:.4f} below {before[q.metric]:.4f} with {previous} "
            f"(more than quality.max_regression {q.max_regression})"
        )
    return problems


def revalidate(
    registry: Any,
    consumer: str,
    upstream: str,
    *,
    sign_key: Ed25519PrivateKey | None,
    actor: str = "cli",
    record: bool = True,
    isolation: Isolation | None = None,
) -> RevalidationResult:
    """Re-score ``consumer`` with ``upstream``'s outputs and, when it passes and ``record``, sign the evidence
    with ``sign_key`` and record the new pin in ``registry`` (a :class:`cascade_registry.Registry`)."""
    c_info, u_info = registry.get(consumer), registry.get(upstream)
    current = {p.upstream.name: p for p in registry.pins(c_info.ref)}
    if u_info.ref.name not in current:
        raise RevalidationError(
            f"{c_info.ref} was not trained on {u_info.ref.name} "
            f"(its upstreams: {', '.join(current) or 'none'})",
            "only a card upstream can be re-pinned",
        )
    gate = registry.gate_report(c_info.ref)  # verified: signed, trusted, bound to the registered files
    registry.gate_report(u_info.ref)
    policy = GatePolicy.model_validate(gate.policy)
    pin = current[u_info.ref.name]
    before = pin.evidence.get("after") if pin.source == "revalidated" else _metrics(gate.checks)
    report, rows = _rescore(c_info, u_info, policy, isolation)
    problems = _judge(report, before or {}, policy, pin.upstream)
    after = _metrics(report.checks)
    result = RevalidationResult(
        consumer=c_info.ref,
        upstream=u_info.ref,
        previous=pin.upstream,
        passed=not problems,
        before=before or {},
        after=after,
        checks=report.checks,
        problems=problems,
        holdout_rows=rows,
    )
    if problems or not record:
        return result
    if sign_key is None:
        raise RevalidationError("a pin needs signed evidence", "pass --sign-key (or use --dry-run)")
    predicate = RevalidationPredicate(
        consumer=c_info.ref,
        upstream=u_info.ref,
        previous=pin.upstream,
        passed=True,
        checks=report.checks,
        before=result.before,
        after=after,
        policy_sha256=policy_digest(gate.policy),
        holdout_rows=rows,
        tool_version=tool_version(),
        created_at=datetime.now(UTC),
    )
    statement = revalidation_statement(predicate, c_info.onnx_sha256, u_info.onnx_sha256)
    envelope = sign_statement(statement, sign_key).model_dump(mode="json", by_alias=True)
    recorded = registry.record_pin(c_info.ref, u_info.ref, {"attestation": envelope}, actor=actor)
    return result.model_copy(update={"pin": recorded})
