"""Mixed-type tables: schema inference, missing values, encodings fused into the graph, parity, policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from cascade_registry.artifacts import ModelBundle
from tests.real_tables import synthetic_frame
from training import TrainConfig, train
from training.cli import main
from training.errors import DataError
from training.graph import onnx_predict
from training.preprocessing import fit_preprocessor


def _config(path: Path, out: Path, **kw) -> TrainConfig:
    values = {
        "data": str(path),
        "target": "churn",
        "drop": ("signup",),
        "trials": 1,
        "out": out,
        "progress": False,
        "calibration": "sigmoid",
        "model": "logistic_regression",
    } | kw
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "churn.csv"
    synthetic_frame(rows=400).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def bundle(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(_config(table, tmp_path_factory.mktemp("b"), onehot_max=8))


def test_describe_data_prints_the_schema_and_stops(table: Path, tmp_path: Path, capsys) -> None:
    code = main(["--data", str(table), "--target", "churn", "--describe-data", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "owner                    boolean" in out and "zip                      categorical" in out
    assert "income                   numeric" in out and "median imputation + missing indicator" in out
    assert not any(tmp_path.iterdir())


def test_overrides_change_the_kinds(table: Path, capsys) -> None:
    main(
        [
            "--data",
            str(table),
            "--target",
            "churn",
            "--describe-data",
            "--numeric",
            "owner",
            "--categorical",
            "age",
            "--drop",
            "zip,signup",
        ]
    )
    out = capsys.readouterr().out
    assert "owner                    numeric" in out and "age                      categorical" in out
    assert "zip " not in out and "signup" not in out


def test_card_records_the_typed_schema_and_preprocessing(bundle: Path) -> None:
    card = ModelBundle.load(bundle).card
    kinds = {f.name: f.kind for f in card.features}
    assert kinds == {
        "zip": "categorical",
        "owner": "boolean",
        "plan": "categorical",
        "income": "numeric",
        "age": "numeric",
    }
    by = {f.name: f for f in card.features}
    assert by["owner"].levels == ["false", "true"] and by["owner"].encoding == "onehot"
    assert by["zip"].encoding == "target(cross-fitted)" and by["plan"].missing_in_training
    assert by["income"].missing_indicator and by["income"].impute_value is not None
    assert not by["age"].missing_indicator
    assert card.preprocessing["missing"] == "auto" and card.preprocessing["unknown_category"] == "other"
    assert card.export.parity_max_abs_diff <= 1e-4


def test_graph_takes_input_and_categorical_and_answers_raw_rows(bundle: Path) -> None:
    model = onnx.load(bundle / "model.onnx")
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert inputs == {"input": onnx.TensorProto.FLOAT, "categorical": onnx.TensorProto.STRING}
    X = np.array([[np.nan, np.nan], [30.0, 50.0]], np.float32)
    C = np.array([["", "", ""], ["never-seen", "yes", "pro"]], dtype=object)
    label, probs = onnx_predict((bundle / "model.onnx").read_bytes(), X, C)
    assert probs.shape == (2, 2) and np.all(np.isfinite(probs)) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_preprocessing_graph_is_bit_exact_on_messy_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    X[rng.random((200, 2)) < 0.2] = np.nan
    C = rng.choice(["a", "b", "c", "rare", ""], p=[0.4, 0.3, 0.2, 0.02, 0.08], size=(200, 2)).astype(str)
    y = rng.integers(0, 3, size=200)
    for unknown in ("other", "ignore", "error"):
        for onehot_max, labels in ((1, None), (1, y), (16, None)):
            pre = fit_preprocessor(
                ["x", "c1", "y", "c2"],
                ["numeric", "categorical", "numeric", "boolean"],
                X,
                C,
                impute=True,
                unknown=unknown,
                onehot_max=onehot_max,
                y=labels,
                n_classes=3,
            )
            probe_C = np.array([["a", "zzz"], ["", "rare"], ["b", ""], ["new", "c"]])
            probe_X = np.array([[np.nan, 1.0], [0.5, np.nan], [np.nan, np.nan], [1.0, 2.0]])
            z = _run_preprocessing(pre, probe_X, probe_C)
            assert np.array_equal(z, pre.transform(probe_X, probe_C).astype(np.float32)), (
                unknown,
                onehot_max,
            )


def _run_preprocessing(pre, X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The preprocessing alone: fuse it in front of an identity 'model' that returns Z as probabilities."""
    from onnx import TensorProto, helper

    width = pre.width
    nodes = [
        helper.make_node("Identity", ["input"], ["probabilities"]),
        helper.make_node(
            "Constant", [], ["label"], value=helper.make_tensor("l", TensorProto.INT64, [1], [0])
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "z",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, width])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, width]),
        ],
    )
    ident = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ident.ir_version = 8
    _, z = onnx_predict(pre.fuse(ident).SerializeToString(), X, C)
    return z


def test_unknown_category_policies(table: Path, tmp_path: Path) -> None:
    def answer(unknown: str) -> np.ndarray:
        b = train(_config(table, tmp_path / unknown, unknown_category=unknown, onehot_max=8))
        X = np.array([[35.0, 40.0]], np.float32)
        C = np.array([["Z001", "yes", "never-seen-plan"]], dtype=object)
        return onnx_predict((b / "model.onnx").read_bytes(), X, C)[1]

    for unknown in ("other", "ignore"):
        p = answer(unknown)
        assert np.all(np.isfinite(p))
    card = ModelBundle.load(tmp_path / "ignore" / "demo-1").card
    assert {f.unknown for f in card.categorical_features} == {"ignore"}


def test_missing_error_refuses_gaps(table: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing values .*income"):
        train(_config(table, tmp_path, missing="error"))


def test_same_seed_same_bytes_and_parquet_equals_csv(table: Path, bundle: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "churn.parquet"
    pd.read_csv(table).to_parquet(parquet, index=False)
    again = train(_config(parquet, tmp_path / "p", onehot_max=8))
    assert (again / "model.onnx").read_bytes() == (bundle / "model.onnx").read_bytes()


#: table kinds every family must accept: (columns kept, config overrides; else the family's defaults)
TABLE_KINDS: dict[str, tuple[list[str], dict]] = {
    "numeric with gaps": (["income", "age"], {}),
    # every encoder at once: one-hot (owner: boolean; plan: a gap level), target-encoded zip, imputed numbers
    "mixed": (["zip", "owner", "plan", "income", "age"], {"onehot_max": 4, "rare_min": 2}),
    "categorical only": (["zip", "owner", "plan"], {}),
}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    frame, out = synthetic_frame(rows=200, seed=3), tmp_path_factory.mktemp("kinds")
    paths = {}
    for kind, (columns, _) in TABLE_KINDS.items():
        paths[kind] = out / f"{kind.replace(' ', '_').replace(',', '')}.csv"
        frame[[*columns, "churn"]].to_csv(paths[kind], index=False)
    return paths


@pytest.mark.parametrize(
    "model", ["logistic_regression", "random_forest", "hist_gradient_boosting", "svm", "naive_bayes", "mlp"]
)
def test_every_family_accepts_every_table_kind_with_parity(kinds, tmp_path: Path, model: str) -> None:
    """The family x table-kind matrix: each cell trains (one trial, one calibration split), exports one
    graph with the preprocessing fused in, and meets the parity limit."""
    for kind, (_, overrides) in TABLE_KINDS.items():
        config = _config(kinds[kind], tmp_path / kind.replace(" ", "_"), model=model, drop=(),
                         calibration_cv=0, name=model.replace("_", "-"), **overrides)
        card = ModelBundle.load(train(config)).card
        assert card.export.parity_max_abs_diff <= 1e-4, (model, kind)
        encodings = (card.preprocessing or {}).get("encodings", {})
        if kind == "mixed":
            assert encodings == {"zip": "target(cross-fitted)", "owner": "onehot", "plan": "onehot"}, model
        elif kind == "categorical only":
            assert encodings["owner"] == "onehot", (model, encodings)
        assert card.metrics.accuracy > 0.55, (model, kind, card.metrics.accuracy)


@pytest.mark.parametrize("method", ["none", "temperature", "beta", "auto"])
def test_every_calibration_method_on_a_mixed_table(table: Path, tmp_path: Path, method: str) -> None:
    card = ModelBundle.load(train(_config(table, tmp_path, calibration=method))).card
    assert card.export.parity_max_abs_diff <= 1e-4


def test_time_column_splits_out_of_time(table: Path, tmp_path: Path) -> None:
    card = ModelBundle.load(train(_config(table, tmp_path, drop=(), time_column="signup"))).card
    assert card.dataset.time_column == "signup" and card.older_metrics is not None
    assert card.older_metrics.rows == card.dataset.splits["older"].rows > 0
    frame = pd.read_csv(table)
    assert card.dataset.splits["train"].rows + card.dataset.splits["older"].rows > len(frame) // 2


def test_a_table_with_only_categorical_columns(tmp_path: Path) -> None:
    frame = synthetic_frame(rows=300)[["zip", "owner", "plan", "churn"]]
    path = tmp_path / "cats.csv"
    frame.to_csv(path, index=False)
    b = train(_config(path, tmp_path / "o", drop=()))
    card = ModelBundle.load(b).card
    assert card.numeric_features == [] and card.export.parity_max_abs_diff <= 1e-4


def test_target_encoding_is_out_of_fold_on_the_training_rows() -> None:
    rng = np.random.default_rng(1)
    C = rng.choice([f"L{i}" for i in range(30)], size=(300, 1)).astype(str)
    y = (rng.random(300) < 0.5).astype(np.int64)
    X = np.zeros((300, 0))
    pre = fit_preprocessor(["c"], ["categorical"], X, C, impute=True, onehot_max=4, y=y, n_classes=2)
    assert pre.categorical[0].encoding == "target(cross-fitted)" and pre.width == 1
    full, oof = pre.transform(X, C), pre.train_design(X, C)
    assert not np.array_equal(full, oof)  # the training rows never see their own label's statistics
