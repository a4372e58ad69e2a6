"""Cross-fitted target encoding of a high-cardinality categorical column (no leakage).

A level's value is the smoothed share of each class among the training rows holding it,
``(count(level, c) + SMOOTHING * prior_c) / (count(level) + SMOOTHING)`` (one column for binary: the
positive class; C columns for multiclass). Rare levels share the pooled "other" value; an unseen level
gets it too under ``unknown="other"``, else the prior. The training rows themselves are encoded
out-of-fold (``FOLDS`` seeded folds, each encoded by the other folds' statistics), so the model never
sees a value computed from its own label; every other row (validation, test, serving) uses the full
training statistics, which is what the graph's ``LabelEncoder`` nodes hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_registry.artifacts import FeatureSpec
from training.graph import GraphBuilder

__all__ = ["FOLDS", "SMOOTHING", "TargetEncoder", "fit_target_encoder"]

SMOOTHING = 10.0
FOLDS = 5
_OTHER, _MISSING = "__other__", ""


@dataclass(frozen=True)
class TargetEncoder:
    name: str
    kind: str
    levels: list[str]
    rare: tuple[str, ...]
    values: dict[str, list[float]]  # level / _OTHER / _MISSING -> float32 per output column
    prior: list[float]
    unknown: str
    has_missing: bool
    oof: np.ndarray  # float64 [n_train, width]: the training rows' out-of-fold encodings
    encoding: str = "target(cross-fitted)"

    @property
    def width(self) -> int:
        return len(self.prior)

    def table(self) -> tuple[dict[str, list[float]], list[float]]:
        table = {lv: self.values[lv] for lv in self.levels}
        table.update({lv: self.values[_OTHER] for lv in self.rare})
        table[_MISSING] = self.values.get(_MISSING, self.prior)
        return table, (self.values[_OTHER] if self.unknown == "other" else self.prior)

    def transform(self, values: np.ndarray) -> np.ndarray:
        table, default = self.table()
        return np.asarray([table.get(v, default) for v in values.tolist()], np.float32).astype(np.float64)

    def to_onnx(self, b: GraphBuilder, column: str) -> str:
        table, default = self.table()
        keys = sorted(table)
        cols = [b.op("LabelEncoder", [column], hint="target", domain="ai.onnx.ml", keys_strings=keys,
                     values_floats=[float(table[k][c]) for k in keys], default_float=float(default[c]))
                for c in range(self.width)]
        return b.concat(cols)

    def spec(self) -> FeatureSpec:
        return FeatureSpec(name=self.name, dtype="string", kind=self.kind, levels=self.levels,  # type: ignore[arg-type]
                           missing="level", missing_in_training=self.has_missing, encoding=self.encoding,
                           unknown=self.unknown)  # type: ignore[arg-type]


def _stats(values: np.ndarray, Y: np.ndarray, keys: list[str], rare: set[str], prior: np.ndarray
           ) -> dict[str, list[float]]:
    group = np.array([_OTHER if v in rare else v for v in values.tolist()], dtype=object)
    out = {}
    for key in [*keys, _OTHER, _MISSING]:
        rows = group == key
        n = int(rows.sum())
        v = (Y[rows].sum(axis=0) + SMOOTHING * prior) / (n + SMOOTHING)
        out[key] = [float(x) for x in np.asarray(v, np.float32)]
    return out


def fit_target_encoder(name: str, kind: str, values: np.ndarray, y: np.ndarray, n_classes: int,
                       levels: list[str], rare: tuple[str, ...], unknown: str, seed: int) -> TargetEncoder:
    Y = np.eye(n_classes)[y]
    if n_classes == 2:
        Y = Y[:, 1:]
    prior = Y.mean(axis=0)
    full = _stats(values, Y, levels, set(rare), prior)
    oof = np.zeros((len(values), Y.shape[1]))
    folds = np.random.default_rng(seed).permutation(len(values)) % FOLDS
    for k in range(FOLDS):
        fit, enc = folds != k, folds == k
        p = Y[fit].mean(axis=0) if fit.any() else prior
        stats = _stats(values[fit], Y[fit], levels, set(rare), p)
        group = [(_OTHER if v in rare else v) for v in values[enc].tolist()]
        oof[enc] = np.asarray([stats.get(g, stats[_OTHER]) for g in group], np.float32)
    return TargetEncoder(name=name, kind=kind, levels=levels, rare=rare, values=full,
                         prior=[float(x) for x in np.asarray(prior, np.float32)], unknown=unknown,
                         has_missing=bool((values == _MISSING).any()), oof=oof)
