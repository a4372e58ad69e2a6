"""Seeded random search over a family's declared ranges; selection on the validation split."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from cascade_registry.artifacts import SearchInfo, TrialRecord
from training.errors import TrainingError
from training.families import Family
from training.metrics import METRIC_DEFINITIONS, score
from training.splits import Split

__all__ = ["SearchResult", "random_search"]


@dataclass(frozen=True)
class SearchResult:
    estimator: Any
    params: dict[str, Any]
    info: SearchInfo
    seconds: float
    per_candidate_seconds: list[float]
    #: extras of a family's own search (training.families.Family.search): card.details and bundle files
    details: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def random_search(
    family: Family, train: Split, validation: Split, metric: str, trials: int, seed: int, progress: bool,
    refit_note: str = "not refitted, so validation stays untouched by training", jobs: int = 1,
) -> SearchResult:
    """Fit ``trials`` candidates (the first one is the family's defaults), keep the best on validation;
    ``jobs`` candidates at a time in joblib worker processes.

    Ties keep the earlier candidate, so the defaults win unless beaten.
    """
    rng = np.random.default_rng(seed)
    candidates = [dict(family.defaults)] + [family.sample(rng) for _ in range(trials - 1)]
    sign = -1.0 if metric == "log_loss" else 1.0
    records: list[TrialRecord] = []
    best: tuple[float, int, Any] | None = None
    start = time.perf_counter()
    bar = tqdm(total=len(candidates), desc=f"search {family.name}", unit="fit", disable=not progress,
               leave=False)
    # each candidate is fitted on its own (the same estimator, seed and rows in a worker process, a Ray
    # task or here), and the results come back in candidate order: the winner does not depend on ``jobs``
    if jobs == 1:  # one at a time, here: the progress bar moves with each fit
        fitted: Any = (_fit_and_score(family, p, seed, train, validation, metric) for p in candidates)
    else:
        fitted = Parallel(n_jobs=min(jobs, len(candidates)))(
            delayed(_fit_and_score)(family, p, seed, train, validation, metric) for p in candidates
        )
    for i, (params, (est, fit_seconds, value)) in enumerate(zip(candidates, fitted, strict=True)):
        records.append(TrialRecord(params=_jsonable(params), score=value, fit_seconds=round(fit_seconds, 6)))
        if best is None or sign * value > sign * best[0]:
            best = (value, i, est)
        bar.update()
        bar.set_postfix({metric: f"{best[0]:.4f}"})
    bar.close()
    assert best is not None
    value, index, estimator = best
    info = SearchInfo(
        method=f"random search, seeded (seed={seed}); candidate 1 is the family defaults",
        metric=metric,
        metric_definition=METRIC_DEFINITIONS[metric],
        selection=(
            f"fit each candidate on the train split, score {metric} on the validation split, keep the "
            f"{'lowest' if sign < 0 else 'highest'} (ties keep the earlier candidate); winner: candidate "
            f"{index + 1} of {len(candidates)}; {refit_note}"
        ),
        trials=len(candidates),
        ranges=family.ranges(),
        defaults=_jsonable(dict(family.defaults)),
        best_params=_jsonable(candidates[index]),
        best_value=value,
        candidates=records,
    )
    return SearchResult(
        estimator=estimator,
        params=dict(candidates[index]),
        info=info,
        seconds=time.perf_counter() - start,
        per_candidate_seconds=[r.fit_seconds for r in records],
    )


def _fit_and_score(family: Family, params: dict[str, Any], seed: int, train: Split, validation: Split,
                   metric: str) -> tuple[Any, float, float]:
    """One candidate: (fitted estimator, fit seconds, validation score)."""
    est = family.make_estimator(dict(params), seed)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the score tells the story
            est.fit(train.X, train.y)
    except (ValueError, np.linalg.LinAlgError) as e:
        raise TrainingError(
            f"{family.name} failed to fit with {params}: {e}", "try another family or check the data"
        ) from None
    fit_seconds = time.perf_counter() - t0
    return est, fit_seconds, score(metric, validation.y, _proba(est, validation.X))


def _proba(est: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(est.predict_proba(X), dtype=np.float64)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted(params):
        v = params[k]
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out
