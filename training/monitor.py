"""Online quality and live drift of a served model, from what the gateway captured.

- :func:`online_quality`: captured predictions joined to the labels their consumers sent back, scored
  per version and consumer with the project's one set of metrics (:mod:`training.metrics`: accuracy,
  Brier, top-label ECE), next to the card's offline test figures and the sampling error of each online
  figure (two standard errors: a figure outside it says the model behaves differently live).
- :func:`drift_check`: adversarial validation (:mod:`training.shift`, the chapter's 6.3.2) between the
  captured inputs and the bundle's held-out reference rows, overall and per feature (each column's own
  ROC AUC against the reference, and its importance in the classifier). At or above the model's policy
  threshold (``monitor.drift_auc`` of the policy its gate verdict recorded) the registry marks the
  version stale with the reason and the figures.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import roc_auc_score

from cascade_registry.artifacts import REFERENCE_FILE, ModelCard
from cascade_registry.capture import CapturedPrediction, LabelledPrediction
from cascade_registry.gate_policy import GatePolicy, MonitorPolicy
from training.errors import TrainingError
from training.metrics import brier_score, ece_mce, score
from training.reliability import reliability_curve
from training.shift import adversarial_validation

__all__ = [
    "DriftReport",
    "MonitorError",
    "OnlineFigures",
    "QualityReport",
    "drift_check",
    "online_quality",
    "plot_online_reliability",
]


class MonitorError(TrainingError):
    """Not enough captured or labelled traffic, or a bundle without its reference rows."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class OnlineFigures(_Frozen):
    """Scores of one group of labelled live rows, with two standard errors of accuracy and Brier."""

    version: int
    consumer: str
    rows: int
    accuracy: float
    brier: float
    ece: float
    accuracy_error: float
    brier_error: float
    ece_error: float


class QualityReport(_Frozen):
    model: str
    since: datetime | None
    bins: int
    overall: list[OnlineFigures]
    groups: list[OnlineFigures]
    offline: dict[int, dict[str, float]]
    within: dict[int, dict[str, bool]]
    unknown_labels: int


def _arrays(rows: list[LabelledPrediction], classes: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    index = {c: i for i, c in enumerate(classes)}
    known = [r for r in rows if r.truth in index and len(r.prediction.probabilities) == len(classes)]
    y = np.array([index[r.truth] for r in known], dtype=np.int64)
    proba = np.array([r.prediction.probabilities for r in known], dtype=np.float64).reshape(-1, len(classes))
    return y, proba, len(rows) - len(known)


def _figures(version: int, consumer: str, y: np.ndarray, proba: np.ndarray, bins: int) -> OnlineFigures:
    n = len(y)
    accuracy = score("accuracy", y, proba)
    onehot = np.eye(proba.shape[1])[y]
    per_row = np.sum((proba - onehot) ** 2, axis=1) / (2 if proba.shape[1] == 2 else 1)
    ece, _ = ece_mce(y, proba, bins)
    return OnlineFigures(
        version=version,
        consumer=consumer,
        rows=n,
        accuracy=round(accuracy, 6),
        brier=round(brier_score(y, proba), 6),
        ece=round(ece, 6),
        accuracy_error=round(2 * math.sqrt(max(accuracy * (1 - accuracy), 1 / n) / n), 6),
        brier_error=round(2 * float(per_row.std(ddof=1) if n > 1 else 1.0) / math.sqrt(n), 6),
        ece_error=round(_ece_error(y, proba, bins), 6),
    )


def _ece_error(y: np.ndarray, proba: np.ndarray, bins: int) -> float:
    """Two standard errors of the binned ECE of a calibrated model on these rows: per bin, the binomial
    spread of its accuracy at its mean confidence, weighted by its share of rows (an ECE of n rows is
    above zero by about this much even when the model is perfectly calibrated)."""
    hit = (proba.argmax(axis=1) == y).astype(np.float64)
    confidence, _, counts, _ = reliability_curve(hit, proba.max(axis=1), bins)
    spread = np.sqrt(np.maximum(confidence * (1 - confidence), 1.0 / counts) / counts)
    return 2 * float(np.sum(counts / len(y) * spread))


def online_quality(
    rows: list[LabelledPrediction], cards: dict[int, ModelCard], since: datetime | None = None
) -> QualityReport:
    """Score labelled live rows per version (``overall``) and per version and consumer (``groups``)."""
    if not rows:
        raise MonitorError(
            "no labelled captured predictions in the window",
            "capture traffic (lockgate serve --capture-rate) and send labels (POST /feedback or "
            "'lockgate feedback import'), or widen --since",
        )
    any_card = next(iter(cards.values()))
    bins = any_card.metrics.bins
    overall, groups, offline, within, unknown = [], [], {}, {}, 0
    for version in sorted({r.prediction.version for r in rows}):
        card = cards.get(version, any_card)
        mine = [r for r in rows if r.prediction.version == version]
        y, proba, bad = _arrays(mine, card.classes)
        unknown += bad
        if not len(y):
            continue
        total = _figures(version, "*", y, proba, bins)
        overall.append(total)
        m = card.metrics
        offline[version] = {"rows": m.rows, "accuracy": m.accuracy, "brier": m.brier, "ece": m.ece}
        within[version] = {
            k: abs(getattr(total, k) - offline[version][k]) <= getattr(total, f"{k}_error")
            for k in ("accuracy", "brier", "ece")
        }
        for consumer in sorted({r.prediction.consumer for r in mine}):
            yc, pc, _ = _arrays([r for r in mine if r.prediction.consumer == consumer], card.classes)
            if len(yc):
                groups.append(_figures(version, consumer, yc, pc, bins))
    return QualityReport(
        model=any_card.ref.name,
        since=since,
        bins=bins,
        overall=overall,
        groups=groups,
        offline=offline,
        within=within,
        unknown_labels=unknown,
    )


def plot_online_reliability(path: Path, rows: list[LabelledPrediction], card: ModelCard, title: str) -> Path:
    """The top-label reliability diagram of the live rows (one panel), each point with its row count."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    y, proba, _ = _arrays(rows, card.classes)
    if not len(y):
        raise MonitorError("no labelled rows with a known class to plot", "send labels the card names")
    hit = (proba.argmax(axis=1) == y).astype(np.float64)
    xs, ys, ns, ece = reliability_curve(hit, proba.max(axis=1), card.metrics.bins)
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="perfect")
    ax.plot(xs, ys, "s-", ms=4, lw=1.4, label=f"live (ECE {ece:.3f}, {len(y)} rows)")
    ax.axhline(
        card.metrics.accuracy,
        color="C1",
        lw=0.8,
        ls=":",
        label=f"offline accuracy {card.metrics.accuracy:.3f}",
    )
    for x, y_, n in zip(xs, ys, ns, strict=True):
        ax.annotate(f"n={n}", (x, y_), textcoords="offset points", xytext=(3, -9), fontsize=6)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.04),
        xlabel="predicted probability of the predicted class",
        ylabel="observed accuracy",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------ drift
class DriftReport(_Frozen):
    model: str
    version: int
    auc: float
    threshold: float
    drifted: bool
    rows: int
    reference_rows: int
    features: dict[str, dict[str, float]]
    verdict: str


def _reference(bundle: Path, card: ModelCard) -> pd.DataFrame:
    path = Path(bundle) / REFERENCE_FILE
    if not path.is_file():
        raise MonitorError(
            f"the bundle of {card.ref} has no {REFERENCE_FILE} to compare live inputs with",
            "retrain it with 'lockgate train' (every bundle since 0.1 writes one)",
        )
    with np.load(path, allow_pickle=False) as ref:
        numeric = [f.name for f in card.features if f.kind == "numeric"]
        frame = pd.DataFrame(ref["holdout_inputs"].astype(np.float64), columns=numeric)
        other = [f.name for f in card.features if f.kind != "numeric"]
        if other and "holdout_categorical_inputs" in ref:
            frame = frame.join(pd.DataFrame(ref["holdout_categorical_inputs"], columns=other))
    return frame


def _live(rows: list[CapturedPrediction], card: ModelCard) -> pd.DataFrame:
    numeric = [f.name for f in card.features if f.kind == "numeric"]
    records = [
        r.inputs if isinstance(r.inputs, dict) else dict(zip(numeric, r.inputs, strict=False)) for r in rows
    ]
    return pd.DataFrame.from_records(records)


def _feature_auc(reference: pd.Series, live: pd.Series) -> float:
    both = pd.concat([reference, live], ignore_index=True)
    values = (
        both.astype(float).fillna(-1e9).to_numpy()
        if pd.api.types.is_numeric_dtype(both)
        else pd.factorize(both.astype(str), sort=True)[0].astype(float)
    )
    is_live = np.r_[np.zeros(len(reference)), np.ones(len(live))]
    auc = float(roc_auc_score(is_live, values))
    return round(max(auc, 1 - auc), 6)


def drift_check(
    rows: list[CapturedPrediction], bundle: Path, card: ModelCard, policy: MonitorPolicy, seed: int = 0
) -> DriftReport:
    """Adversarial validation of the captured inputs against the bundle's held-out reference rows."""
    if len(rows) < policy.drift_min_rows:
        raise MonitorError(
            f"{len(rows)} captured rows of {card.ref}; the policy needs {policy.drift_min_rows} for a drift "
            "verdict",
            "capture more traffic (a higher --capture-rate) or widen --since",
        )
    reference, live = _reference(bundle, card), _live(rows[-policy.drift_max_rows :], card)
    columns = [c for c in reference.columns if c in live.columns]
    if not columns:
        raise MonitorError(f"the captured inputs share no column with {card.ref}'s reference rows")
    report = adversarial_validation(
        reference[columns], live[columns].astype(reference[columns].dtypes), seed=seed
    )
    features = {
        c: {"auc": _feature_auc(reference[c], live[c]), "importance": report.top_features.get(c, 0.0)}
        for c in columns
    }
    drifted = report.auc >= policy.drift_auc
    worst = sorted(features, key=lambda c: -features[c]["auc"])[:3]
    shown = ", ".join(f"{c} (AUC {features[c]['auc']:.2f})" for c in worst)
    verdict = (
        f"drift on live traffic: a classifier tells {len(live)} captured rows from the training reference "
        f"with AUC {report.auc:.3f} (policy monitor.drift_auc {policy.drift_auc}); most shifted: {shown}"
        if drifted
        else f"no drift: AUC {report.auc:.3f} < {policy.drift_auc} on {len(live)} captured rows"
    )
    return DriftReport(
        model=card.ref.name,
        version=card.ref.version,
        auc=report.auc,
        threshold=policy.drift_auc,
        drifted=drifted,
        rows=len(live),
        reference_rows=len(reference),
        features=features,
        verdict=verdict,
    )


def monitor_policy(recorded: dict[str, Any]) -> MonitorPolicy:
    """The monitor limits of the policy a version's gate verdict recorded (the defaults when it has none)."""
    return GatePolicy.model_validate({**recorded, "monitor": recorded.get("monitor", {})}).monitor
