"""Mixed-type bundles for the serving tests and benchmarks, built from ONNX operators (issue 11).

The graph follows the table contract: ``input`` float32 ``[N, n_numeric]`` (NaN = missing) and
``categorical`` string ``[N, n_categorical]`` ("" = missing, booleans as "true"/"false") ->
median imputation (ai.onnx.ml Imputer) and scaling of the numbers, per categorical column a
LabelEncoder (known levels kept, "" -> the "missing" level, anything else -> "other") and a
OneHotEncoder, one linear layer, Softmax -> ``label`` int64 ``[N]`` and ``probabilities`` float32.
``expected_probabilities`` computes the same function in numpy, so tests check that the gateway put
every value in the right place.

The card is a trained demo card with the typed features of the table; the signed gate verdict is
written as ``lockgate check`` writes it (:func:`tests.bundles.write_attestation`: the gate that judges
two-input graphs comes with the training half of issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper

from cascade_registry.artifacts import FeatureSpec, ModelBundle, ModelCard, sha256_file, write_json_atomic
from tests.bundles import TEST_KEY, write_attestation

MISSING, OTHER = "__missing__", "__other__"


@dataclass
class Table:
    """Columns in card order: (name, kind, levels, missing policy, unknown policy)."""

    columns: list[tuple[str, str, list[str], str, str]]
    classes: list[str] = field(default_factory=lambda: ["no", "yes"])
    seed: int = 0

    @property
    def numeric(self) -> list[str]:
        return [c[0] for c in self.columns if c[1] == "numeric"]

    @property
    def categorical(self) -> list[tuple[str, list[str]]]:
        return [(c[0], c[2]) for c in self.columns if c[1] != "numeric"]

    def width(self) -> int:
        return len(self.numeric) + sum(len(levels) + 2 for _, levels in self.categorical)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        w = rng.normal(size=(self.width(), len(self.classes))).astype(np.float32)
        return w, rng.normal(size=len(self.classes)).astype(np.float32)

    def medians(self) -> np.ndarray:
        return np.linspace(30.0, 60.0, len(self.numeric)).astype(np.float32)


def demo_table() -> Table:
    return Table(
        [
            ("age", "numeric", [], "impute_median", "other"),
            ("city", "categorical", ["Lyon", "Nice", "Paris"], "level", "other"),
            ("income", "numeric", [], "error", "other"),
            ("owner", "boolean", ["false", "true"], "error", "error"),
            ("plan", "categorical", ["basic", "pro"], "error", "error"),
            ("channel", "categorical", ["mail", "web"], "level", "ignore"),
        ]
    )


def bench_table(numeric: int = 6, categorical: int = 4) -> Table:
    cols: list[tuple[str, str, list[str], str, str]] = []
    for j in range(numeric):
        cols.append((f"x{j}", "numeric", [], "impute_median", "other"))
    for j in range(categorical):
        cols.append((f"c{j}", "categorical", [f"level{k}" for k in range(3 + 5 * j)], "level", "other"))
    return Table(cols)


def _graph(table: Table) -> onnx.ModelProto:
    n_num, cats = len(table.numeric), table.categorical
    w, b = table.weights()
    nodes = [
        helper.make_node(
            "Imputer",
            ["input"],
            ["imputed"],
            domain="ai.onnx.ml",
            imputed_value_floats=table.medians().tolist(),
            replaced_value_float=float("nan"),
        ),
        helper.make_node("Div", ["imputed", "scale"], ["scaled"]),
    ]
    parts = ["scaled"]
    for j, (_, levels) in enumerate(cats):
        nodes += [
            helper.make_node("Gather", ["categorical", f"idx_{j}"], [f"raw_{j}"], axis=1),
            helper.make_node(
                "LabelEncoder",
                [f"raw_{j}"],
                [f"lev_{j}"],
                domain="ai.onnx.ml",
                keys_strings=[*levels, ""],
                values_strings=[*levels, MISSING],
                default_string=OTHER,
            ),
            helper.make_node(
                "OneHotEncoder",
                [f"lev_{j}"],
                [f"hot_{j}"],
                domain="ai.onnx.ml",
                cats_strings=[*levels, MISSING, OTHER],
                zeros=1,
            ),
            helper.make_node("Cast", [f"hot_{j}"], [f"hotf_{j}"], to=TensorProto.FLOAT),
        ]
        parts.append(f"hotf_{j}")
    nodes += [
        helper.make_node("Concat", parts, ["features"], axis=1),
        helper.make_node("MatMul", ["features", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    inits = [
        helper.make_tensor("scale", TensorProto.FLOAT, [n_num], [10.0] * n_num),
        helper.make_tensor("W", TensorProto.FLOAT, list(w.shape), w.ravel().tolist()),
        helper.make_tensor("B", TensorProto.FLOAT, list(b.shape), b.tolist()),
        *[helper.make_tensor(f"idx_{j}", TensorProto.INT64, [], [j]) for j in range(len(cats))],
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_num])]
    if cats:
        inputs.append(helper.make_tensor_value_info("categorical", TensorProto.STRING, ["N", len(cats)]))
    graph = helper.make_graph(
        nodes,
        "mixed_table",
        inputs,
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(table.classes)]),
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def expected_probabilities(table: Table, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """What the graph computes, in numpy (the reference for the tests)."""
    x = np.where(np.isnan(numeric), table.medians(), numeric) / 10.0
    parts = [x]
    for j, (_, levels) in enumerate(table.categorical):
        cats = [*levels, MISSING, OTHER]
        hot = np.zeros((len(categorical), len(cats)), dtype=np.float32)
        for i, v in enumerate(categorical[:, j]):
            level = v if v in levels else MISSING if v == "" else OTHER
            hot[i, cats.index(level)] = 1.0
        parts.append(hot)
    w, b = table.weights()
    logits = np.concatenate(parts, axis=1) @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _features(table: Table) -> list[FeatureSpec]:
    specs = []
    for (name, kind, levels, missing, unknown), median in zip(
        table.columns, _medians_by_column(table), strict=True
    ):
        if kind == "numeric":
            specs.append(
                FeatureSpec(
                    name=name,
                    min=0.0,
                    max=100.0,
                    mean=float(median),
                    std=20.0,
                    missing=missing,
                    missing_in_training=missing != "error",
                )
            )
        else:
            specs.append(
                FeatureSpec(
                    name=name,
                    dtype="string",
                    kind=kind,
                    levels=levels,
                    missing=missing,
                    unknown=unknown,
                    encoding="onehot",
                    missing_in_training=missing != "error",
                )
            )
    return specs


def _medians_by_column(table: Table) -> list[float | None]:
    medians = iter(table.medians().tolist())
    return [next(medians) if c[1] == "numeric" else None for c in table.columns]


def mixed_bundle(
    out: Path,
    template: Path,
    table: Table,
    name: str = "tabular",
    version: int = 1,
    sign_key: Ed25519PrivateKey = TEST_KEY,
) -> Path:
    """Write ``out/<name>-<version>`` (model.onnx, card.json from the template bundle's card,
    reference.npz, a passing gate verdict signed by ``sign_key`` over those files) and return it."""
    bundle = out / f"{name}-{version}"
    bundle.mkdir(parents=True)
    onnx.save(_graph(table), bundle / "model.onnx")
    card: ModelCard = ModelBundle.read_card(template)
    features = _features(table)
    card = ModelCard.model_validate(
        {
            **card.model_dump(),
            "ref": {"name": name, "version": version},
            "classes": table.classes,
            "features": [f.model_dump() for f in features],
            "dataset": {**card.dataset.model_dump(), "n_features": len(features)},
            "export": {**card.export.model_dump(), "onnx_sha256": sha256_file(bundle / "model.onnx")},
            "recommended_threshold": None,
        }
    )
    write_json_atomic(bundle / "card.json", card)
    rows = sample_rows(table, 16)
    numeric, categorical = split_rows(table, rows)
    np.savez(
        bundle / "reference.npz",
        inputs=numeric,
        categorical_inputs=categorical.astype(str),
        probabilities=expected_probabilities(table, numeric, categorical).astype(np.float64),
    )
    write_attestation(bundle, card.ref, key=sign_key)  # last: the verdict covers every file above
    return bundle


def sample_rows(table: Table, n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` valid named-column rows (known levels only, no gaps)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for name, kind, levels, _, _ in table.columns:
            if kind == "numeric":
                row[name] = round(float(rng.uniform(10, 90)), 3)
            elif kind == "boolean":
                row[name] = bool(rng.integers(2))
            else:
                row[name] = str(rng.choice(levels))
        rows.append(row)
    return rows


def split_rows(table: Table, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Named rows -> the graph's two arrays (None/absent -> NaN or "", booleans -> "true"/"false")."""
    numeric = np.array(
        [[np.nan if r.get(c) is None else r[c] for c in table.numeric] for r in rows], dtype=np.float32
    )

    def text(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    categorical = np.array([[text(r.get(c)) for c, _ in table.categorical] for r in rows], dtype=object)
    return numeric.reshape(len(rows), len(table.numeric)), categorical
