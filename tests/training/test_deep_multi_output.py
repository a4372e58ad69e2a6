"""Multi-output MLP: a shared encoder with a classification head and a second head, gamma tuned on
validation, each classification head calibrated, one ONNX graph with one output per head, card.outputs,
and a real gateway answering every head."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from cascade_registry.artifacts import ModelBundle
from lockgate.cli import main
from serving.codecs import encode_predictions
from serving.predictor import OnnxPredictor
from tests.bundles import gate_bundle
from tests.serving.conftest import released_gateway
from training.calibration import fit_calibrator
from training.deep.multi_output import MultiOutputMLP, make_two_targets
from training.deep.multi_output_export import export_multi_output


@pytest.fixture(scope="module")
def table() -> dict[str, np.ndarray]:
    torch.set_num_threads(1)  # as lockgate train does (threads=1): no oversubscription on shared cores
    return make_two_targets(300, seed=0)


@pytest.fixture(scope="module")
def bundle(table, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multi")
    pd.DataFrame(table).to_csv(root / "shapes.csv", index=False)
    code = main(["train", "--data", str(root / "shapes.csv"), "--target", "shape", "--target2", "size",
                 "--model", "mlp", "--quiet", "--out", str(root / "out"), "--name", "shapes"])
    assert code == 0
    return root / "out" / "shapes-1"


def test_card_lists_every_head_and_gamma_was_tuned_on_validation(bundle):
    card = ModelBundle.load(bundle).card
    assert [(o.name, o.kind) for o in card.outputs] == [("shape", "classification"), ("size", "regression")]
    size = card.outputs[1]
    assert size.onnx_outputs == ["size__value"] and 0.0 <= size.range[0] < size.range[1] <= 10.0
    assert size.metrics["r2"] > 0.8 and card.metrics.accuracy > 0.8  # the known rule is learnt
    assert [c.params["gamma"] for c in card.search.candidates] == [0.25, 0.5, 0.75]
    assert card.search.best_params["gamma"] == card.details["multi_output"]["gamma"]
    assert card.calibration.method == "temperature" and card.export.parity_max_abs_diff <= 1e-4
    names = [o.name for o in ort.InferenceSession(str(bundle / "model.onnx")).get_outputs()]
    assert names == ["label", "probabilities", "size__value"]


def test_classification_second_head_is_calibrated_and_exported_with_parity(table):
    CAL, TEST = slice(180, 240), slice(240, None)
    X = np.column_stack([table[f"x{j}"] for j in range(6)]).astype(np.float32)
    classes, y = np.unique(table["shape"], return_inverse=True)
    big = (table["size"] > 5).astype(int)
    model = MultiOutputMLP(gamma=0.5, kind2="classification", n_classes2=2, epochs=30, device="cpu",
                           random_state=0).fit(X[:180], y[:180], big[:180])
    s2 = model.head2_scores(X[CAL])
    cal1 = fit_calibrator("temperature", model.decision_scores(X[CAL]), y[CAL], 3, "margin")
    cal2 = fit_calibrator("temperature", s2[:, 1:] - s2[:, :1], big[CAL], 2, "margin")
    graph = export_multi_output(model, "big", cal1, cal2)
    outs = ort.InferenceSession(graph.SerializeToString()).run(None, {"input": X[TEST]})
    native1 = cal1.predict_proba(model.decision_scores(X[TEST]))
    s2 = model.head2_scores(X[TEST])
    native2 = cal2.predict_proba(s2[:, 1:] - s2[:, :1])
    assert np.abs(outs[1] - native1).max() <= 1e-4 and np.abs(outs[3] - native2).max() <= 1e-4
    assert np.array_equal(outs[2], native2.argmax(1)) and np.mean(outs[2] == big[TEST]) > 0.85
    with pytest.raises(Exception, match="gamma"):
        MultiOutputMLP(gamma=1.5).fit(X, y, big)


def test_the_real_gate_passes_and_the_gateway_answers_every_head(bundle, table, tmp_path: Path):
    gate_bundle(bundle)  # the real safety gate judges the bundle (its first head) and signs the verdict
    rows = np.column_stack([table[f"x{j}"] for j in range(6)])[:3].tolist()
    with released_gateway(tmp_path, [bundle]) as (gw, key):
        r = httpx.post(gw.url + "/predict", json={"model": "shapes", "inputs": rows},
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
        described = httpx.get(gw.url + "/models/shapes", headers={"Authorization": f"Bearer {key}"},
                              timeout=10).json()
    native = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"input": np.float32(rows)})
    for row, label, value in zip(predictions, native[0], native[2], strict=True):
        assert row["label"] == ["round", "square", "star"][label]
        assert set(row["probabilities"]) == {"round", "square", "star"}
        assert abs(row["outputs"]["size"]["value"] - float(value)) <= 1e-5
        assert 0.0 <= row["outputs"]["size"]["value"] <= 10.0
    assert [o["name"] for o in described["card"]["outputs"]] == ["shape", "size"]


def test_a_single_head_answer_is_unchanged(gated_demo):
    predictor = OnnxPredictor.from_bundle(gated_demo)
    x = np.load(gated_demo / "reference.npz")["inputs"][:4]
    assert predictor.extra_heads == []
    labels, probabilities = predictor.predict(x)
    both = predictor.predict_all(x)
    assert len(both) == 2 and np.array_equal(both[0], labels) and np.array_equal(both[1], probabilities)
    answer = json.loads(encode_predictions('{"model":1', predictor.classes, labels, probabilities, None))
    assert set(answer["predictions"][0]) == {"label", "probabilities", "warnings"}


def test_target2_errors_are_one_clear_line(bundle, tmp_path: Path, capsys):
    csv = bundle.parent.parent / "shapes.csv"
    cases = [
        (["--target2", "nope", "--model", "mlp"], "is not a column"),
        (["--target2", "size", "--model", "svm"], "needs --model mlp"),
        (["--target2", "shape", "--model", "mlp"], "different column"),
        (["--target2", "size", "--model", "mlp", "--calibration", "isotonic"], "temperature scaling"),
    ]
    for args, message in cases:
        common = ["--data", str(csv), "--target", "shape", "--quiet", "--out", str(tmp_path)]
        assert main(["train", *common, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
