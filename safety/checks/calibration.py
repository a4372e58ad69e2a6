"""The calibration contract, recomputed through ONNX Runtime on reference.npz's held-out split.

- per-class (one-vs-rest) ECE at most ``calibration.max_class_ece``;
- Brier score at most ``calibration.max_brier``, log loss at most ``calibration.max_log_loss``;
- the ONNX graph's top-label ECE within ``calibration.max_ece_delta`` of the card's (native) claim;
- binary with a recommended threshold: the ONNX decisions ``p1 >= threshold`` on the reference rows agree
  with the native ones (reference.npz ``probabilities``) on at least ``calibration.min_decision_agreement``.

Definitions are the card's (top-label / one-vs-rest, equal-width bins; Brier of the one-hot vector, halved
for binary as scikit-learn's ``brier_score_loss``; log loss clipped at 1e-15).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cascade_registry.artifacts import CheckResult
from safety.checks.base import outcome
from safety.checks.runtime import case_failure
from safety.context import GateContext
from safety.errors import ReferenceDataError
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase
from safety.scores import expected_calibration_error

__all__ = ["CalibrationCheck", "calibration_scores"]


def _class_ece(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    hit = y.astype(np.float64)
    return float(sum((which == b).mean() * abs(hit[which == b].mean() - p[which == b].mean())
                     for b in range(bins) if (which == b).any()))


def calibration_scores(y: np.ndarray, P: np.ndarray, bins: int) -> dict[str, Any]:
    onehot = np.eye(P.shape[1])[y]
    brier = float(np.mean(np.sum((P - onehot) ** 2, axis=1)))
    return {
        "ece": expected_calibration_error(y, P, bins),
        "class_ece": [_class_ece(y == k, P[:, k], bins) for k in range(P.shape[1])],
        "brier": brier / 2 if P.shape[1] == 2 else brier,
        "log_loss": float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-15, 1.0)))),
    }


class CalibrationCheck:
    name = "calibration"
    requires = ("contract",)
    description = ("per-class ECE, Brier and log-loss ceilings, ONNX-vs-card ECE delta and decision "
                   "agreement at the recommended threshold, on reference.npz")

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        c = policy.calibration
        limit = {"class_ece": f"<= {c.max_class_ece}", "brier": f"<= {c.max_brier}",
                 "log_loss": f"<= {c.max_log_loss}", "ece_delta": f"<= {c.max_ece_delta}",
                 "decision_agreement": f">= {c.min_decision_agreement}"}
        try:
            ref = ctx.reference()
        except ReferenceDataError as e:
            return outcome(self, "fail", str(e), limit=limit)
        dtype = ctx.input_dtype()
        run = ctx.run_model([SandboxCase("holdout", ref.holdout_inputs.astype(dtype),
                                         categorical=ref.holdout_categorical),
                             SandboxCase("reference", ref.inputs.astype(dtype))])
        failure = case_failure(run, "holdout") or case_failure(run, "reference")
        if failure:
            return outcome(self, "fail", failure, limit=limit)
        P = run.outputs["holdout"]["probabilities"].astype(np.float64)
        s = calibration_scores(ref.holdout_labels, P, policy.quality.ece_bins)
        delta = abs(s["ece"] - ctx.card.calibration.after.ece)
        value: dict[str, Any] = {"worst_class_ece": round(max(s["class_ece"]), 4),
                                 "brier": round(s["brier"], 4), "log_loss": round(s["log_loss"], 4),
                                 "ece_delta": round(delta, 4)}
        problems = []
        for k, e in enumerate(s["class_ece"]):
            if e > c.max_class_ece:
                problems.append(f"class {ctx.card.classes[k]!r}: ECE {e:.4f} > {c.max_class_ece} "
                                "(calibration.max_class_ece)")
        if s["brier"] > c.max_brier:
            problems.append(f"Brier {s['brier']:.4f} > {c.max_brier} (calibration.max_brier)")
        if s["log_loss"] > c.max_log_loss:
            problems.append(f"log loss {s['log_loss']:.4f} > {c.max_log_loss} (calibration.max_log_loss)")
        if delta > c.max_ece_delta:
            problems.append(f"ONNX ECE {s['ece']:.4f} vs the card's {ctx.card.calibration.after.ece:.4f}: "
                            f"differs by {delta:.4f} > {c.max_ece_delta} (calibration.max_ece_delta)")
        t = ctx.card.recommended_threshold
        if t is not None and P.shape[1] == 2:
            onnx_yes = run.outputs["reference"]["probabilities"][:, 1].astype(np.float64) >= t
            agreement = float(np.mean(onnx_yes == (ref.probabilities[:, 1] >= t)))
            value["decision_agreement"] = round(agreement, 4)
            if agreement < c.min_decision_agreement:
                problems.append(f"decisions at the recommended threshold {t:.2f} agree on {agreement:.1%} of "
                                f"the reference rows < {c.min_decision_agreement:.1%}")
        if problems:
            return outcome(self, "fail", "; ".join(problems), value=value, limit=limit)
        return outcome(self, "pass", value=value, limit=limit, message=f"{len(P)} held-out rows")
