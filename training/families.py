"""Model families: the pluggable table ``name -> Family``.

Extension point
---------------
A family is a :class:`Family` registered under its name with :func:`register_family`::

    from training.families import Family, FloatRange, register_family
    from training.exporters import sklearn_exporter

    register_family(Family(
        name="mlp",
        description="multi-layer perceptron",
        space={"alpha": FloatRange(1e-6, 1e-1, log=True)},
        defaults={"alpha": 1e-4},
        make_estimator=lambda params, seed: make_my_mlp(params, seed),
        export=sklearn_exporter(double=True),   # or any ``Exporter`` (see training.graph)
    ))

- ``make_estimator(params, seed)`` returns an unfitted scikit-learn classifier (a Pipeline is fine)
  with ``fit``, ``predict_proba`` and optionally ``decision_function``; it must be deterministic for a
  given seed.
- ``export(fitted, n_features, n_classes, kind)`` returns a :class:`training.graph.BaseGraph` from
  ``input`` float32 [N, F] to the predicted probabilities (``kind="proba"``) or to the response the
  calibrator consumes (``kind="response"``, :mod:`training.response`: the logits when the estimator
  has them, else ``predict_proba``; one column for binary; ``kind="monotone_response"``: the log-odds
  isotonic reads, asked only of estimators with ``predict_joint_log_proba``). Training appends the
  calibrator and checks parity.
- ``estimator_type`` (optional): the class of the family's estimators, so that an ensemble member
  given as a bare estimator of that class exports with the family's exporter (:func:`exporter_for`).
- ``onehot_max`` (optional): how many levels a categorical column may keep and still be one-hot encoded
  (:data:`training.preprocessing.ONEHOT_MAX` for trees, ``ONEHOT_MAX_ADDITIVE`` for models that add up
  per-column effects); above it the column is target-encoded.

Modules listed in :data:`EXTENSION_MODULES` are imported (when they exist) the first time a name is
not found or the full list is asked for, so that families defined elsewhere (``training.deep``,
``training.ensemble``) register themselves without anyone editing this file.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from cascade_registry.artifacts import InputSpec
from training.errors import ConfigError
from training.exporters import (
    MarginClassifier,
    export_hist_gradient_boosting,
    export_margin_classifier,
    export_naive_bayes,
    export_random_forest,
    sklearn_exporter,
)
from training.graph import Exporter
from training.preprocessing import ONEHOT_MAX, ONEHOT_MAX_ADDITIVE

__all__ = [
    "EXTENSION_MODULES",
    "Choice",
    "Family",
    "FloatRange",
    "IntRange",
    "bind_inputs",
    "exporter_for",
    "family_names",
    "get_family",
    "is_family",
    "register_family",
    "unregister_family",
]

EXTENSION_MODULES = ("training.deep", "training.ensemble")


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def describe(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int  # inclusive
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            return int(round(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))))
        return int(rng.integers(self.low, self.high + 1))

    def describe(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def describe(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


Param = Choice | IntRange | FloatRange


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    space: Mapping[str, Param]
    defaults: Mapping[str, Any]
    make_estimator: Callable[[dict[str, Any], int], Any]
    export: Exporter
    notes: dict[str, str] = field(default_factory=dict)
    estimator_type: type | None = None
    #: the most kept levels a categorical column may have to be one-hot encoded for this family (above:
    #: cross-fitted target encoding); the config's ``onehot_max`` overrides it (training.preprocessing)
    onehot_max: int = ONEHOT_MAX
    #: optional: ``configure(family, config, registry_url) -> Family``, the family for one run's own options
    #: (the MLP's ``init_from``/``freeze``/``size_search``, see training.deep.family); None: the family as is
    configure: Callable[[Family, Any, str | None], Family] | None = None
    #: optional: a search replacing :func:`training.search.random_search` (same arguments and result)
    search: Callable[..., Any] | None = None
    #: deep topologies: the input kinds the data must hold (``card.inputs``; "any" = any input, the columns
    #: no input claims counting as one tabular input); empty = the family reads one plain table
    input_kinds: tuple[str, ...] = ()

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One random configuration: every searched parameter drawn, the rest at its default."""
        params = dict(self.defaults)
        for key in sorted(self.space):
            params[key] = self.space[key].sample(rng)
        return params

    def ranges(self) -> dict[str, Any]:
        return {k: self.space[k].describe() for k in sorted(self.space)}


_FAMILIES: dict[str, Family] = {}
_extensions_loaded = False


def register_family(family: Family, replace: bool = False) -> Family:
    """Add ``family`` to the table; refuses to silently replace an existing name."""
    if family.name in _FAMILIES and not replace:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Remove ``name`` from the table (for tests and plugins that clean up after themselves)."""
    _FAMILIES.pop(name, None)


def _load_extensions() -> None:
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    for module in EXTENSION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


def _with_inputs(make: Callable[[dict[str, Any], int], Any], inputs: tuple[InputSpec, ...],
                 names: tuple[str, ...], params: dict[str, Any], seed: int) -> Any:
    return make(params, seed).set_params(inputs=inputs, feature_names=names)


def bind_inputs(family: Family, inputs: Sequence[InputSpec], feature_names: Sequence[str]) -> Family:
    """``family`` whose estimators know the data's inputs and column names (families with ``input_kinds``);
    refuses data lacking an input kind the family needs."""
    if not family.input_kinds:
        return family
    claimed = {c for spec in inputs for c in spec.columns}
    kinds = [spec.kind for spec in inputs] + (["tabular"] if set(feature_names) - claimed else [])
    needed = [k for k in family.input_kinds if k != "any"]
    if any(k not in kinds for k in needed) or len(kinds) < len(family.input_kinds):
        want = (f"an input of kind {' and '.join(needed)}" if needed
                else f"at least {len(family.input_kinds)} inputs")
        raise ConfigError(
            f"--model {family.name} needs data with {want}; this data holds: {', '.join(kinds)}",
            "use --data digits (an 8x8 image) with cnn, --data sequences with gru, --data mixed_inputs with "
            "multi, or a table family such as --model mlp",
        )
    make = partial(_with_inputs, family.make_estimator, tuple(inputs), tuple(feature_names))
    return dataclasses.replace(family, make_estimator=make)


def family_names() -> list[str]:
    _load_extensions()
    return list(_FAMILIES)


def is_family(name: str) -> bool:
    """True when ``name`` is registered; extension modules are imported only for unknown names."""
    if name not in _FAMILIES:
        _load_extensions()
    return name in _FAMILIES


def exporter_for(estimator: Any) -> Exporter:
    """The exporter of the family whose ``estimator_type`` ``estimator`` is, else skl2onnx in float64."""
    _load_extensions()
    for family in _FAMILIES.values():
        if family.estimator_type is not None and isinstance(estimator, family.estimator_type):
            return family.export
    return sklearn_exporter(double=True)


def get_family(name: str) -> Family:
    if not is_family(name):
        _load_extensions()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r}", f"choose one of {', '.join(_FAMILIES)}") from None


# --------------------------------------------------------------------------------------- builtins
def _logistic_regression(params: dict[str, Any], seed: int) -> Any:
    model = LogisticRegression(
        C=params["C"], class_weight=params["class_weight"], max_iter=2000, random_state=seed
    )
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _random_forest(params: dict[str, Any], seed: int) -> Any:
    return RandomForestClassifier(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        min_samples_leaf=params["min_samples_leaf"],
        max_features=params["max_features"],
        class_weight=params["class_weight"],
        random_state=seed,
        n_jobs=1,
    )


def _hist_gradient_boosting(params: dict[str, Any], seed: int) -> Any:
    return HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"],
        max_iter=params["max_iter"],
        max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"],
        l2_regularization=params["l2_regularization"],
        early_stopping=False,
        random_state=seed,
    )


def _svm(params: dict[str, Any], seed: int) -> Any:
    model = SVC(C=params["C"], gamma=params["gamma"], kernel="rbf", random_state=seed)
    return MarginClassifier(Pipeline([("scale", StandardScaler()), ("model", model)]))


def _naive_bayes(params: dict[str, Any], seed: int) -> Any:
    return GaussianNB(var_smoothing=params["var_smoothing"])


register_family(
    Family(
        name="logistic_regression",
        description="standardized features + L2 logistic regression (multinomial for multiclass)",
        space={"C": FloatRange(1e-3, 1e2, log=True), "class_weight": Choice((None, "balanced"))},
        defaults={"C": 1.0, "class_weight": None},
        make_estimator=_logistic_regression,
        export=sklearn_exporter(double=True),
        onehot_max=ONEHOT_MAX_ADDITIVE,
    )
)
register_family(
    Family(
        name="random_forest",
        description="random forest of CART trees (probability = mean of leaf class frequencies)",
        space={
            "n_estimators": IntRange(50, 300),
            "max_depth": Choice((None, 4, 8, 16)),
            "min_samples_leaf": IntRange(1, 10),
            "max_features": Choice(("sqrt", 0.5, 1.0)),
            "class_weight": Choice((None, "balanced")),
        },
        defaults={
            "n_estimators": 100,
            "max_depth": None,
            "min_samples_leaf": 1,
            "max_features": "sqrt",
            "class_weight": None,
        },
        make_estimator=_random_forest,
        # float64 input, so the leaves are summed in float64: float32 sums moved multiclass one-vs-rest
        # isotonic by 0.18 where every class's calibrated value is ~0 (digits); thresholds rounded down
        # to float32, so splits stay exact
        export=export_random_forest,
        estimator_type=RandomForestClassifier,
    )
)
register_family(
    Family(
        name="hist_gradient_boosting",
        description="histogram gradient boosting (LightGBM-style), no early stopping for reproducibility",
        space={
            "learning_rate": FloatRange(0.02, 0.3, log=True),
            "max_iter": IntRange(50, 300),
            "max_leaf_nodes": IntRange(8, 63),
            "min_samples_leaf": IntRange(5, 50),
            "l2_regularization": Choice((0.0, 0.01, 0.1, 1.0)),
        },
        defaults={
            "learning_rate": 0.1,
            "max_iter": 100,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.0,
        },
        make_estimator=_hist_gradient_boosting,
        export=export_hist_gradient_boosting,
    )
)
register_family(
    Family(
        name="svm",
        description="standardized features + RBF SVM; uncalibrated probabilities: sigmoid/softmax of margins",
        space={"C": FloatRange(0.1, 100.0, log=True), "gamma": Choice(("scale", 0.001, 0.01, 0.1))},
        defaults={"C": 1.0, "gamma": "scale"},
        make_estimator=_svm,
        export=export_margin_classifier,
        onehot_max=ONEHOT_MAX_ADDITIVE,
    )
)
register_family(
    Family(
        name="naive_bayes",
        description="Gaussian naive Bayes (known to be over-confident: a good case for calibration)",
        space={"var_smoothing": FloatRange(1e-12, 1e-6, log=True)},
        defaults={"var_smoothing": 1e-9},
        make_estimator=_naive_bayes,
        export=export_naive_bayes,
    )
)
