"""Registers the ensembles in the training core's family table (``training.families``).

- ``averaging``:         mean of the members' probabilities
- ``majority_vote``:     vote shares, ties broken by a seeded random class order (``abstain`` is available
                         from the Python API: the core's label is the argmax of the calibrated probabilities)
- ``stacking``:          logistic-regression meta-model on out-of-fold predictions from k=10 blocks
- ``balanced_ensemble``: H resampled balanced datasets (for imbalanced data)

Members are other families at their defaults; the search picks among a few member sets (and H).
"""

from __future__ import annotations

from typing import Any

from training.ensemble.balanced import BalancedEnsemble
from training.ensemble.combiners import AveragingEnsemble, VotingEnsemble
from training.ensemble.graph import ensemble_exporter
from training.ensemble.stacking import StackingEnsemble
from training.families import Choice, Family, IntRange, register_family

__all__ = ["ENSEMBLE_FAMILIES"]

MEMBER_SETS: tuple[tuple[str, ...], ...] = (
    ("logistic_regression", "random_forest", "naive_bayes"),
    ("logistic_regression", "random_forest", "mlp"),
    ("logistic_regression", "naive_bayes", "svm"),
)
_DEFAULT_MEMBERS = MEMBER_SETS[0]


def _members(params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(params.get("members", _DEFAULT_MEMBERS))


ENSEMBLE_FAMILIES = [
    register_family(Family(
        name="averaging",
        description="average of heterogeneous members' probabilities",
        space={"members": Choice(MEMBER_SETS)},
        defaults={"members": _DEFAULT_MEMBERS},
        make_estimator=lambda p, seed: AveragingEnsemble(members=_members(p), random_state=seed),
        export=ensemble_exporter,
    ), replace=True),
    register_family(Family(
        name="majority_vote",
        description="majority vote of heterogeneous members (vote shares; seeded random tie order)",
        space={"members": Choice(MEMBER_SETS)},
        defaults={"members": _DEFAULT_MEMBERS, "tie_policy": "random"},
        make_estimator=lambda p, seed: VotingEnsemble(members=_members(p), tie_policy="random",
                                                      random_state=seed),
        export=ensemble_exporter,
    ), replace=True),
    register_family(Family(
        name="stacking",
        description="stacking: CV-tuned logistic-regression meta-model on out-of-fold member predictions "
        "from k=10 blocks",
        space={"members": Choice(MEMBER_SETS)},
        defaults={"members": _DEFAULT_MEMBERS, "k": 10},
        make_estimator=lambda p, seed: StackingEnsemble(members=_members(p), k=int(p.get("k", 10)),
                                                        random_state=seed),
        export=ensemble_exporter,
    ), replace=True),
    register_family(Family(
        name="balanced_ensemble",
        description="H models on resampled balanced datasets (minority copied, majority chunked), averaged",
        space={"H": IntRange(3, 9), "base": Choice(("logistic_regression", "random_forest"))},
        defaults={"H": 5, "base": "logistic_regression"},
        make_estimator=lambda p, seed: BalancedEnsemble(base=p.get("base", "logistic_regression"),
                                                        H=int(p.get("H", 5)), random_state=seed),
        export=ensemble_exporter,
    ), replace=True),
]
