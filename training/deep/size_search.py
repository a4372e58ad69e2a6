"""The network size search of the chapter, as a :attr:`training.families.Family.search` for the MLP.

Recipe: start at 2 hidden layers x 128 units; **grow** (wider, then deeper, :data:`GROWTH`) until the
model overfits the training split — its training score reaches :data:`OVERFIT_SCORE` or the gap to the
validation score reaches :data:`OVERFIT_GAP`; then **regularize** that size (:data:`REGULARIZERS`, dropout
first, then L2) until the validation score stops improving. Every candidate is fitted on the train
split and scored on train and validation; the winner is the best validation score (ties: the earlier,
smaller one). ``trials`` caps the number of candidates. The curve it followed is in
``card.search.candidates`` (``train_score``, ``phase``), ``card.details['size_search']`` and
``size_search.png``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cascade_registry.artifacts import SearchInfo, TrialRecord
from training.families import Family
from training.figures import save_png
from training.metrics import METRIC_DEFINITIONS, score
from training.search import SearchResult
from training.splits import Split

__all__ = ["GROWTH", "OVERFIT_GAP", "OVERFIT_SCORE", "REGULARIZERS", "SIZE_SEARCH_PNG", "size_search"]

#: (layers, units) from the start on: wider first, then deeper
GROWTH: tuple[tuple[int, int], ...] = ((2, 128), (2, 256), (3, 256), (4, 256), (4, 512))
#: tried in order on the overfitting size until the validation score stops improving
REGULARIZERS: tuple[dict[str, float], ...] = (
    {"dropout": 0.1}, {"dropout": 0.2}, {"dropout": 0.3}, {"dropout": 0.5},
    {"dropout": 0.3, "l2": 1e-4}, {"dropout": 0.3, "l2": 1e-3},
)
#: overfitting the training split: a training score this high (higher-is-better metrics) ...
OVERFIT_SCORE = 0.99
#: ... or a training score this much better than the validation score
OVERFIT_GAP = 0.02
SIZE_SEARCH_PNG = "size_search.png"


def _fit(family: Family, params: dict[str, Any], seed: int, train: Split, validation: Split, metric: str,
         phase: str) -> tuple[Any, TrialRecord]:
    est = family.make_estimator(dict(params), seed)
    t0 = time.perf_counter()
    est.fit(train.X, train.y)
    seconds = time.perf_counter() - t0
    record = TrialRecord(
        params=dict(sorted(params.items())), phase=phase, fit_seconds=round(seconds, 6),
        score=score(metric, validation.y, est.predict_proba(validation.X)),
        train_score=score(metric, train.y, est.predict_proba(train.X)),
    )
    return est, record


def _overfits(r: TrialRecord, sign: float) -> bool:
    assert r.train_score is not None
    gap = sign * (r.train_score - r.score)
    return gap >= OVERFIT_GAP or (sign > 0 and r.train_score >= OVERFIT_SCORE)


def size_search(
    family: Family, train: Split, validation: Split, metric: str, trials: int, seed: int, progress: bool,
    refit_note: str = "", jobs: int = 1,
) -> SearchResult:
    """Grow from 2 x 128 until the training split is overfitted, then regularize (see the module doc).

    Sequential by nature (each step depends on the last), so ``jobs`` is not used."""
    sign = -1.0 if metric == "log_loss" else 1.0
    start = time.perf_counter()
    bar = tqdm(total=trials, desc="size search mlp", unit="fit", disable=not progress, leave=False)
    fitted: list[tuple[Any, TrialRecord]] = []

    def step(params: dict[str, Any], phase: str) -> TrialRecord:
        fitted.append(_fit(family, params, seed, train, validation, metric, phase))
        bar.update()
        return fitted[-1][1]

    base = dict(family.defaults)
    size = {"layers": GROWTH[0][0], "units": GROWTH[0][1]}
    last = step({**base, **size, "dropout": 0.0, "l2": 0.0}, "start")
    for layers, units in GROWTH[1:]:
        if _overfits(last, sign) or len(fitted) >= trials:
            break
        size = {"layers": layers, "units": units}
        last = step({**base, **size, "dropout": 0.0, "l2": 0.0}, "grow")
    overfitted = _overfits(last, sign)
    best_reg = last.score
    for reg in REGULARIZERS if overfitted else ():
        if len(fitted) >= trials:
            break
        r = step({**base, **size, "dropout": 0.0, "l2": 0.0, **reg}, "regularize")
        if sign * r.score <= sign * best_reg:
            break  # validation stopped improving
        best_reg = r.score
    bar.close()
    return _result(family, fitted, metric, sign, seed, overfitted, refit_note, time.perf_counter() - start)


def _result(family: Family, fitted: list[tuple[Any, TrialRecord]], metric: str, sign: float, seed: int,
            overfitted: bool, refit_note: str, seconds: float) -> SearchResult:
    records = [r for _, r in fitted]
    index = max(range(len(records)), key=lambda i: (sign * records[i].score, -i))
    best = records[index]
    info = SearchInfo(
        method=f"network size search (start 2 x 128, grow until the training split is overfitted, then "
        f"regularize), seeded (seed={seed})",
        metric=metric,
        metric_definition=METRIC_DEFINITIONS[metric],
        selection=(
            f"fit each step on the train split, score {metric} on train and validation; overfitted = train "
            f"{metric} >= {OVERFIT_SCORE} or train - validation >= {OVERFIT_GAP}; keep the best validation "
            f"score (ties keep the earlier, smaller network); winner: step {index + 1} of {len(records)}"
            + (f"; {refit_note}" if refit_note else "")
        ),
        trials=len(records),
        ranges={"growth (layers, units)": [list(g) for g in GROWTH], "regularizers": list(REGULARIZERS)},
        defaults=dict(sorted(family.defaults.items())),
        best_params=best.params,
        best_value=best.score,
        candidates=records,
    )
    curve = [{"step": i + 1, "phase": r.phase, "layers": r.params["layers"], "units": r.params["units"],
              "dropout": r.params.get("dropout", 0.0), "l2": r.params.get("l2", 0.0),
              "train": round(float(r.train_score or 0.0), 6), "validation": round(float(r.score), 6)}
             for i, r in enumerate(records)]
    details = {"size_search": {
        "curve": curve, "winner_step": index + 1, "overfitted": overfitted,
        "stopped": "regularization stopped improving validation" if overfitted
        else "the largest size (or the budget) was reached before the training split was overfitted",
        "png": SIZE_SEARCH_PNG,
    }}
    return SearchResult(
        estimator=fitted[index][0], params=dict(best.params), info=info, seconds=seconds,
        per_candidate_seconds=[r.fit_seconds for r in records], details=details,
        files={SIZE_SEARCH_PNG: plot_size_search(curve, metric, index)},
    )


def plot_size_search(curve: list[dict[str, Any]], metric: str, winner: int) -> bytes:
    """Train vs validation score per step, labelled with the size and regularization (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [c["step"] for c in curve]
    labels = [f"{c['layers']}x{c['units']}" + (f"\nd{c['dropout']:g}" if c["dropout"] else "")
              + (f" l2 {c['l2']:g}" if c["l2"] else "") for c in curve]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(curve)), 4))
    ax.plot(steps, [c["train"] for c in curve], "o-", label="train")
    ax.plot(steps, [c["validation"] for c in curve], "s--", label="validation")
    ax.axvline(steps[winner], color="grey", linestyle=":", label=f"chosen: step {steps[winner]}")
    ax.set_xticks(steps, labels, fontsize=8)
    ax.set_xlabel("step (phase: " + " -> ".join(dict.fromkeys(c["phase"] for c in curve)) + ")")
    ax.set_ylabel(metric)
    ax.legend()
    ax.set_title("network size search: grow until overfitted, then regularize")
    fig.tight_layout()
    with tempfile.TemporaryDirectory() as tmp:
        return save_png(fig, Path(tmp) / SIZE_SEARCH_PNG).read_bytes()
