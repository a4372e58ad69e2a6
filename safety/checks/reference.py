"""Checks against reference.npz: parity (7), quality recomputed on the held-out split (8), and no regression
against the currently released version (8, with ``--registry-url``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cascade_registry.artifacts import MODEL_FILE, CheckResult, sha256_file
from safety.checks.base import outcome
from safety.checks.runtime import case_failure
from safety.context import GateContext
from safety.errors import ReferenceDataError
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase
from safety.scores import expected_calibration_error, score

__all__ = ["ParityCheck", "QualityCheck", "RegressionCheck"]


class ParityCheck:
    name = "parity"
    requires = ("contract",)
    description = "ONNX probabilities match the native model's in reference.npz (max |Δp|)"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        limit = policy.parity.max_abs_diff
        try:
            ref = ctx.reference()
        except ReferenceDataError as e:
            return outcome(self, "fail", str(e), limit=limit)
        run = ctx.reference_run()
        assert run is not None, "asked without extra cases"
        failure = case_failure(run, "parity")
        if failure:
            return outcome(self, "fail", failure, limit=limit)
        probs = run.outputs["parity"]["probabilities"].astype(np.float64)
        if probs.shape != ref.probabilities.shape:
            return outcome(
                self,
                "fail",
                f"probabilities {list(probs.shape)} vs reference {list(ref.probabilities.shape)}",
                limit=limit,
            )
        diff = np.abs(probs - ref.probabilities)
        worst = float(np.nanmax(diff)) if np.isfinite(diff).all() else float("inf")
        value = float(f"{worst:.3g}")
        msg = f"{len(probs)} rows; card claims {ctx.card.export.parity_max_abs_diff:.3g}"
        if not worst <= limit:
            return outcome(
                self,
                "fail",
                f"max |Δp| {worst:.3g} > {limit:g} on {msg} (parity.max_abs_diff)",
                value=value,
                limit=limit,
            )
        return outcome(self, "pass", value=value, limit=limit, message=msg)


def _holdout_scores(ctx: GateContext, policy: GatePolicy, model: Path | None = None) -> dict[str, Any]:
    """Run a model on the bundle's held-out split in the sandbox and score it."""
    ref = ctx.reference()
    run = ctx.reference_run() if model is None else None
    if run is None:
        run = ctx.run_model(
            [SandboxCase("holdout", ref.holdout_inputs.astype(ctx.input_dtype()),
                         categorical=ref.holdout_categorical)], model_path=model
        )
    failure = case_failure(run, "holdout")
    if failure:
        raise ReferenceDataError(f"the held-out rows could not be scored: {failure}")
    out = run.outputs["holdout"]
    labels, probs = out["label"].astype(np.int64), out["probabilities"].astype(np.float64)
    q = policy.quality
    result: dict[str, Any] = {
        "metric": score(q.metric, ref.holdout_labels, labels),
        "ece": expected_calibration_error(ref.holdout_labels, probs, q.ece_bins),
        "rows": len(labels),
        "slices": {},
    }
    if ref.holdout_segments is not None:
        for seg in np.unique(ref.holdout_segments):
            mask = ref.holdout_segments == seg
            result["slices"][str(seg)] = (
                score(q.metric, ref.holdout_labels[mask], labels[mask]),
                int(mask.sum()),
            )
    return result


class QualityCheck:
    name = "quality"
    requires = ("contract",)
    description = (
        "metric floor, ECE ceiling, per-slice floors and a minimum row count, recomputed on the held-out "
        "split (reference.npz's, or the gate's own with --holdout)"
    )

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        q = policy.quality
        limit = {
            q.metric: f">= {q.min_metric}",
            "ece": f"<= {q.max_ece}",
            "slice": f">= {q.min_slice_metric}",
        }
        try:
            s = _holdout_scores(ctx, policy)
        except ReferenceDataError as e:
            return outcome(self, "fail", str(e), limit=limit)
        value = {q.metric: round(s["metric"], 4), "ece": round(s["ece"], 4), "rows": s["rows"]}
        limit["rows"] = f">= {q.min_holdout_rows}"
        problems, notes = [], []
        if s["rows"] < q.min_holdout_rows:
            problems.append(
                f"only {s['rows']} held-out rows (< quality.min_holdout_rows {q.min_holdout_rows}): "
                "too few to vouch for any metric; give the gate more rows, e.g. with --holdout FILE"
            )
        if ctx.holdout_path is not None:
            notes.append(f"scored on --holdout {ctx.holdout_path.name}, not on the bundle's reference.npz")
        if s["metric"] < q.min_metric:
            problems.append(f"{q.metric} {s['metric']:.4f} < {q.min_metric} (quality.min_metric)")
        if s["ece"] > q.max_ece:
            problems.append(f"ECE {s['ece']:.4f} > {q.max_ece} (quality.max_ece)")
        for seg, (val, rows) in sorted(s["slices"].items()):
            if rows < q.min_slice_rows:
                notes.append(f"slice {seg!r} has only {rows} rows (not judged)")
            elif val < q.min_slice_metric:
                problems.append(f"slice {seg!r}: {q.metric} {val:.4f} < {q.min_slice_metric} on {rows} rows")
        if s["slices"]:
            value["worst_slice"] = round(min(v for v, _ in s["slices"].values()), 4)
        claimed = getattr(ctx.card.metrics, q.metric, None)
        if ctx.holdout_path is None and claimed is not None and abs(claimed - s["metric"]) > q.card_tolerance:
            problems.append(
                f"the card claims {q.metric} {claimed:.4f}, recomputed {s['metric']:.4f} "
                f"(differs by more than quality.card_tolerance {q.card_tolerance})"
            )
        message = "; ".join(problems + notes)
        if problems:
            return outcome(self, "fail", message, value=value, limit=limit)
        return outcome(
            self, "pass", value=value, limit=limit, message=message or f"{s['rows']} held-out rows"
        )


class RegressionCheck:
    name = "quality.regression"
    requires = ("quality",)
    description = "with --registry-url: no worse than the released version of the same model (by a margin)"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        q = policy.quality
        if not ctx.registry_url:
            return outcome(self, "skip", "no --registry-url given; nothing to compare against")
        try:
            from cascade_registry import Registry  # the façade; imported late so the gate works without it
        except ImportError as e:
            return outcome(self, "error", f"cascade_registry.Registry is not available: {e}")
        card = ctx.card
        with Registry.open(ctx.registry_url) as registry:
            released = [v for v in registry.released() if v.ref.name == card.ref.name]
        if not released:
            return outcome(self, "pass", f"no released version of {card.ref.name!r} yet")
        current = released[0]
        if current.ref == card.ref:
            return outcome(self, "pass", f"{card.ref} is itself the released version")
        ours = _holdout_scores(ctx, policy)["metric"]
        theirs, how = self._released_score(ctx, policy, current)
        value = {"this": round(ours, 4), str(current.ref): round(theirs, 4)}
        limit = f">= {theirs - q.max_regression:.4f}"
        if ours < theirs - q.max_regression:
            return outcome(
                self,
                "fail",
                f"{q.metric} {ours:.4f} is worse than released {current.ref} ({theirs:.4f}, "
                f"{how}) by more than quality.max_regression {q.max_regression}",
                value=value,
                limit=limit,
            )
        return outcome(
            self, "pass", f"compared with released {current.ref} ({how})", value=value, limit=limit
        )

    @staticmethod
    def _released_score(ctx: GateContext, policy: GatePolicy, current: Any) -> tuple[float, str]:
        """Score the released model on *this* bundle's held-out rows when it can be (same features and
        classes, file intact); else fall back to the metric on its card."""
        model = Path(current.bundle_path) / MODEL_FILE
        same_io = (
            current.card.feature_names == ctx.card.feature_names and current.card.classes == ctx.card.classes
        )
        if (
            same_io
            and model.is_file()
            and not model.is_symlink()
            and sha256_file(model) == current.onnx_sha256
        ):
            try:
                return _holdout_scores(ctx, policy, model=model)["metric"], "on this bundle's held-out rows"
            except ReferenceDataError:
                pass
        claimed = getattr(current.card.metrics, policy.quality.metric, None)
        if claimed is None:
            raise ReferenceDataError(
                f"released {current.ref} can neither be run nor has {policy.quality.metric}"
            )
        return float(claimed), "its card's claim"
