"""Preprocessing fitted on the training split only, applied natively and emitted as ONNX before the model.

Raw table (numeric float [n, F_num] with NaN, categorical str [n, F_cat] with ``""``) -> design matrix Z
(float32 values). Per column, in this order inside Z:

- numeric: the value, NaN replaced by the training median; plus a 0/1 "was missing" column when the
  column had gaps in the training split (``missing_indicator``).
- categorical/boolean with at most ``onehot_max`` kept levels: one-hot over the kept levels, then an
  "other" column (rare levels, grouped, and unseen levels under ``unknown="other"``) and a "missing"
  column when the training split had gaps.
- above ``onehot_max`` levels (the family's default, :data:`ONEHOT_MAX` or :data:`ONEHOT_MAX_ADDITIVE`):
  cross-fitted target encoding (:mod:`training.target_encoding`) when labels are given, else frequency
  encoding (the share of training rows holding the level; rare and unseen levels share the "other"
  group's frequency, ``ignore`` gives 0).

Levels seen fewer than ``rare_min`` times in the training split are grouped into "other". Every step
is exact in float32 (a Where, an IsNaN, a LabelEncoder lookup, an Equal), so the graph reproduces the
native Z bit for bit; the model's own parity is then the only source of difference. ONNX ops used:
Gather, IsNaN, Where, Cast, Concat (ai.onnx) and LabelEncoder (ai.onnx.ml) -- the skl2onnx
SimpleImputer/OneHotEncoder converters are not used: they cannot express the rare-level grouping, the
"other" column, or a missing level with one string input (see docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

from cascade_registry.artifacts import FeatureSpec
from training.graph import CATEGORICAL, INPUT, GraphBuilder, embed_model, opsets_of, strip_doc_strings
from training.tables import float32_value
from training.target_encoding import TargetEncoder, fit_target_encoder

__all__ = [
    "ONEHOT_MAX", "ONEHOT_MAX_ADDITIVE", "RARE_MIN", "ColumnEncoder", "Preprocessor", "fit_preprocessor",
]

#: a categorical column with more kept levels than this is target-encoded (frequency without labels);
#: the default of tree families and naive Bayes: one split on a target-ordered column does what a chain
#: of one-hot splits would (synthetic 60-level zip, test split: boosting 0.867 acc / 0.106 Brier
#: target-encoded vs 0.856 / 0.116 one-hot; random forest 0.839 / 0.112 vs 0.833 / 0.122; Gaussian naive
#: Bayes 0.839 / 0.108 vs 0.689 / 0.176)
ONEHOT_MAX = 16
#: the default of linear, kernel and MLP families: one-hot keeps each level's own weight, a target
#: encoding squeezes them onto one smoothed axis (logistic regression on the same table: 0.872 / 0.091
#: one-hot vs 0.844 / 0.109 target-encoded; RBF SVM 0.856 / 0.106 vs 0.850 / 0.107; MLP 0.878 / 0.096
#: vs 0.839 / 0.108)
ONEHOT_MAX_ADDITIVE = 64
#: a level seen fewer times than this in the training split joins the "other" group (5 grouped 9 of the
#: synthetic table's 60 zip levels in the out-of-time split, median 7.5 training rows a level, and cost
#: logistic regression 0.044 accuracy and 0.018 Brier against the ungrouped one-hot baseline; 3 groups
#: one level: within 0.011 / 0.005)
RARE_MIN = 3
OTHER, MISSING = "__other__", ""
Unknown = Literal["error", "ignore", "other"]


@dataclass(frozen=True)
class ColumnEncoder:
    """The fitted encoding of one categorical/boolean column."""

    name: str
    kind: str
    levels: list[str]  # kept levels, sorted
    rare: tuple[str, ...]  # training levels grouped into "other"
    encoding: str  # "onehot" | "frequency"
    has_other: bool
    has_missing: bool
    frequencies: dict[str, float]  # level / OTHER / MISSING -> float32 share of training rows
    unknown: Unknown

    @property
    def width(self) -> int:
        if self.encoding == "frequency":
            return 1
        return len(self.levels) + int(self.has_other) + int(self.has_missing)

    def table(self) -> tuple[dict[str, int | float], int | float]:
        """string -> one-hot index (or frequency), and the value of an unseen string (-1 = all zeros)."""
        if self.encoding == "frequency":
            other = self.frequencies.get(OTHER, 0.0)
            freq: dict[str, int | float] = {lv: self.frequencies[lv] for lv in self.levels}
            freq.update({lv: other for lv in self.rare})
            freq[MISSING] = self.frequencies.get(MISSING, 0.0)
            return freq, (other if self.unknown == "other" else 0.0)
        other_idx = len(self.levels) if self.has_other else -1
        codes: dict[str, int | float] = {lv: i for i, lv in enumerate(self.levels)}
        codes.update({lv: other_idx for lv in self.rare})
        if self.has_missing:
            codes[MISSING] = len(self.levels) + int(self.has_other)
        return codes, (other_idx if self.unknown == "other" else -1)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """float64 [n, width] of float32 values for the column's strings ``values`` [n]."""
        table, default = self.table()
        looked = [table.get(v, default) for v in values.tolist()]
        if self.encoding == "frequency":
            return np.asarray(looked, np.float32).astype(np.float64)[:, None]
        idx = np.asarray(looked, dtype=np.int64)
        return (idx[:, None] == np.arange(self.width)[None, :]).astype(np.float64)

    def to_onnx(self, b: GraphBuilder, column: str) -> str:
        """[N, width] float32 from the [N, 1] string ``column``."""
        table, default = self.table()
        keys = sorted(table)
        if self.encoding == "frequency":
            return b.op(
                "LabelEncoder",
                [column],
                hint="freq",
                domain="ai.onnx.ml",
                keys_strings=keys,
                values_floats=[float(table[k]) for k in keys],
                default_float=float(default),
            )
        idx = b.op(
            "LabelEncoder",
            [column],
            hint="code",
            domain="ai.onnx.ml",
            keys_strings=keys,
            values_int64s=[int(table[k]) for k in keys],
            default_int64=int(default),
        )
        hot = b.op("Equal", [idx, b.const(np.arange(self.width)[None, :], np.int64)])
        return b.op("Cast", [hot], to=TensorProto.FLOAT)

    def spec(self) -> FeatureSpec:
        return FeatureSpec(
            name=self.name,
            dtype="string",
            kind=self.kind,
            levels=self.levels,  # type: ignore[arg-type]
            missing="level",
            missing_in_training=self.has_missing,
            encoding=self.encoding,
            unknown=self.unknown,
        )


@dataclass(frozen=True)
class NumericImputer:
    name: str
    median: float
    indicator: bool
    stats: tuple[float, float, float, float]

    def spec(self, impute: bool) -> FeatureSpec:
        lo, hi, mean, std = self.stats
        return FeatureSpec(
            name=self.name,
            dtype="float32",
            kind="numeric",
            min=float32_value(lo),
            max=float32_value(hi),
            mean=float32_value(mean),
            std=float32_value(std),
            missing="impute_median" if impute else "error",
            missing_in_training=self.indicator,
            missing_indicator=self.indicator,
            impute_value=self.median if impute else None,
            encoding="passthrough",
        )


@dataclass(frozen=True)
class Preprocessor:
    """The fitted preprocessing of one table (see module docstring)."""

    names: list[str]
    kinds: list[str]
    numeric: list[NumericImputer]
    categorical: list[ColumnEncoder | TargetEncoder]
    impute: bool
    onehot_max: int = ONEHOT_MAX  # the threshold it was fitted with

    def train_design(self, X: np.ndarray, C: np.ndarray) -> np.ndarray:
        """The training split's Z: as :meth:`transform`, but target-encoded columns out-of-fold."""
        Z = self.transform(X, C)
        if not any(isinstance(c, TargetEncoder) for c in self.categorical):
            return Z
        start = len(self.numeric) + sum(n.indicator for n in self.numeric)
        for enc in self.categorical:
            if isinstance(enc, TargetEncoder):
                Z[:, start:start + enc.width] = enc.oof.astype(np.float32)
            start += enc.width
        return Z

    @property
    def identity(self) -> bool:
        """All-numeric, no gaps in training: Z is the input itself and the graph is today's."""
        return not self.categorical and not any(n.indicator for n in self.numeric)

    @property
    def width(self) -> int:
        return (
            len(self.numeric)
            + sum(n.indicator for n in self.numeric)
            + sum(c.width for c in self.categorical)
        )

    def transform(self, X: np.ndarray, C: np.ndarray) -> np.ndarray:
        if self.identity:
            return X
        parts = []
        for j, imp in enumerate(self.numeric):
            col = X[:, j]
            gap = np.isnan(col)
            parts.append(np.where(gap, np.float32(imp.median), col)[:, None])
            if imp.indicator:
                parts.append(gap.astype(np.float64)[:, None])
        for j, enc in enumerate(self.categorical):
            parts.append(enc.transform(C[:, j]))
        return np.concatenate(parts, axis=1).astype(np.float32).astype(np.float64)

    def features(self) -> list[FeatureSpec]:
        """The card's typed schema, in the table's column order."""
        # missing = what the graph does: an identity graph (all-numeric, no gaps) imputes nothing
        by_name = {n.name: n.spec(self.impute and not self.identity) for n in self.numeric}
        by_name.update({c.name: c.spec() for c in self.categorical})
        return [by_name[n] for n in self.names]

    def encodings(self) -> dict[str, str]:
        return {c.name: c.encoding for c in self.categorical}

    def _emit(self, b: GraphBuilder) -> str:
        parts = []
        if self.numeric:
            nan = b.op("IsNaN", [INPUT])
            medians = np.array([[n.median for n in self.numeric]], np.float32)
            filled = b.op("Where", [nan, b.const(medians, np.float32), INPUT])
            for j, imp in enumerate(self.numeric):
                parts.append(b.column(filled, j))
                if imp.indicator:
                    parts.append(b.op("Cast", [b.column(nan, j)], to=TensorProto.FLOAT))
        for j, enc in enumerate(self.categorical):
            parts.append(enc.to_onnx(b, b.column(CATEGORICAL, j)))
        return b.concat(parts)

    def fuse(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """``model`` (input ``input`` = Z) behind the preprocessing: inputs ``input`` (+ ``categorical``)."""
        if self.identity:
            return model
        b = GraphBuilder("pp")
        z = self._emit(b)
        outputs = embed_model(b, model, prefix="m/", input_name=z)
        for out in ("label", "probabilities"):
            b.nodes.append(helper.make_node("Identity", [outputs[out]], [out], name=f"{out}_fused"))
        inputs = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, len(self.numeric)])]
        if self.categorical:
            inputs.append(
                helper.make_tensor_value_info(CATEGORICAL, TensorProto.STRING, [None, len(self.categorical)])
            )
        graph = helper.make_graph(
            b.nodes, model.graph.name, inputs, list(model.graph.output), initializer=b.initializers
        )
        fused = helper.make_model(
            graph, opset_imports=opsets_of(b.nodes), producer_name="lockgate", producer_version="1"
        )
        fused.ir_version = model.ir_version
        strip_doc_strings(fused)
        fused.doc_string = model.doc_string
        fused.graph.doc_string = model.graph.doc_string
        fused.domain, fused.model_version = model.domain, model.model_version
        fused.metadata_props.extend(model.metadata_props)
        onnx.checker.check_model(fused)
        return fused


def _fit_column(
    name: str, kind: str, values: np.ndarray, unknown: Unknown, onehot_max: int, rare_min: int
) -> ColumnEncoder:
    levels, counts = np.unique(values[values != MISSING], return_counts=True)
    count = {str(lv): int(c) for lv, c in zip(levels, counts, strict=True)}
    keep = sorted(lv for lv, c in count.items() if c >= rare_min or kind == "boolean")
    rare = tuple(sorted(set(count) - set(keep)))
    n = max(1, len(values))
    frequencies = {lv: float(np.float32(count[lv] / n)) for lv in keep}
    frequencies[OTHER] = float(np.float32(sum(count[lv] for lv in rare) / n))
    frequencies[MISSING] = float(np.float32((values == MISSING).sum() / n))
    return ColumnEncoder(
        name=name,
        kind=kind,
        levels=keep,
        rare=rare,
        encoding="onehot" if len(keep) <= onehot_max else "frequency",
        has_other=bool(rare) or unknown == "other",
        has_missing=bool((values == MISSING).any()),
        frequencies=frequencies,
        unknown=unknown,
    )


def fit_preprocessor(
    names: list[str],
    kinds: list[str],
    X: np.ndarray,
    C: np.ndarray,
    *,
    impute: bool,
    unknown: Unknown = "other",
    onehot_max: int = ONEHOT_MAX,
    rare_min: int = RARE_MIN,
    y: np.ndarray | None = None,
    n_classes: int = 0,
    seed: int = 0,
) -> Preprocessor:
    """Fit on the training split's raw ``X`` (numeric, NaN = missing) and ``C`` (strings, "" = missing)."""
    numeric_names = [n for n, k in zip(names, kinds, strict=True) if k == "numeric"]
    cat = [(n, k) for n, k in zip(names, kinds, strict=True) if k != "numeric"]
    imputers = []
    for j, name in enumerate(numeric_names):
        col = X[:, j]
        ok = col[~np.isnan(col)]
        median = float(np.float32(np.median(ok))) if len(ok) else 0.0
        stats = (
            (float(ok.min()), float(ok.max()), float(ok.mean()), float(ok.std())) if len(ok) else (0.0,) * 4
        )
        imputers.append(NumericImputer(name, median, bool(np.isnan(col).any()) and impute, stats))
    encoders: list[ColumnEncoder | TargetEncoder] = []
    for j, (n, k) in enumerate(cat):
        enc = _fit_column(n, k, C[:, j], unknown, onehot_max, rare_min)
        if enc.encoding == "frequency" and y is not None:  # high cardinality + labels: target encoding
            encoders.append(fit_target_encoder(n, k, C[:, j], y, n_classes, enc.levels, enc.rare, unknown,
                                               seed + j))
        else:
            encoders.append(enc)
    return Preprocessor(
        names=list(names), kinds=list(kinds), numeric=imputers, categorical=encoders, impute=impute,
        onehot_max=onehot_max,
    )
