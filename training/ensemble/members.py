"""Ensemble members: a family name (built with the family's defaults) or an unfitted estimator.

Every member exports through a ``training.graph.Exporter`` (its family's, or skl2onnx / the MLP's for
a bare estimator, :func:`training.families.exporter_for`) to its class probabilities, which the
ensemble graph combines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from training.errors import DeepConfigError
from training.families import exporter_for, family_names, get_family

__all__ = ["FittedMember", "build_member", "member_name", "validate_members"]


@dataclass
class FittedMember:
    name: str
    estimator: Any
    exporter: Any

    def proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)


def member_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    return type(spec).__name__


def validate_members(members: Any, minimum: int = 2, what: str = "members") -> list[Any]:
    if isinstance(members, str) or not hasattr(members, "__len__") or len(members) < minimum:
        raise DeepConfigError(what, members, f"a list of at least {minimum} model families or estimators",
                              "e.g. ('logistic_regression', 'random_forest', 'naive_bayes')")
    names = family_names()
    for spec in members:
        if isinstance(spec, str) and spec not in names:
            raise DeepConfigError(what, spec, f"a model family: one of {', '.join(names)}")
        if not isinstance(spec, str) and not hasattr(spec, "fit"):
            raise DeepConfigError(what, spec, "a family name or an unfitted scikit-learn classifier")
    return list(members)


def build_member(spec: Any, seed: int) -> tuple[str, Any, Any]:
    """(name, unfitted estimator, exporter) for one member spec."""
    if isinstance(spec, str):
        family = get_family(spec)
        return spec, family.make_estimator(dict(family.defaults), seed), family.export
    return member_name(spec), clone(spec), exporter_for(spec)
