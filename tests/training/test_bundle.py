"""The bundle train() writes: a valid card, ONE runnable ONNX graph, reference data and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cascade_registry.artifacts import ModelBundle, ModelCard
from training import TrainConfig, train


def test_bundle_loads_and_card_is_complete(demo_bundle: Path) -> None:
    bundle = ModelBundle.load(demo_bundle)
    card = bundle.card
    assert sorted(p.name for p in demo_bundle.iterdir()) == [
        "card.json",
        "model.onnx",
        "reference.npz",
        "reliability.png",
    ]
    assert ModelCard.model_validate_json((demo_bundle / "card.json").read_text()) == card
    assert (str(card.ref), card.task, card.family) == ("demo:1", "binary", "logistic_regression")
    assert card.classes == ["malignant", "benign"]
    assert len(card.features) == 30 and all(f.min <= f.mean <= f.max for f in card.features)
    # search: every candidate recorded, ranges and defaults, the winner among them
    assert card.search.trials == 2 and len(card.search.candidates) == 2
    assert card.search.ranges["C"]["log"] is True and card.search.defaults["C"] == 1.0
    assert card.search.best_value == max(c.score for c in card.search.candidates)
    assert card.hyperparameters == card.search.best_params
    assert len(card.runtime.per_candidate_seconds) == 2 and card.runtime.total_seconds > 0
    # data: three disjoint splits with digests (the calibrator is cross-fitted), adding up to the whole set
    ds = card.dataset
    assert set(ds.splits) == {"train", "validation", "test"} and ds.splits_disjoint
    assert sum(s.rows for s in ds.splits.values()) == ds.rows == 569
    assert len({s.sha256 for s in ds.splits.values()}) == 3
    cal = card.calibration
    assert cal.cross_fit is not None and cal.cross_fit.folds == 5 and cal.cross_fit.ensemble
    assert cal.refit is not None and cal.refit.splits == ["train", "validation"]
    assert cal.fit_rows == ds.splits["train"].rows + ds.splits["validation"].rows
    assert set(cal.after.per_class) == set(card.classes)
    # calibration, metrics, export, infrastructure, cost
    assert card.calibration.method == "sigmoid" and card.calibration.holdout_rows == card.metrics.rows
    assert card.calibration.before.bins == card.metrics.bins == 10
    assert 0.9 < card.metrics.accuracy <= 1 and len(card.metrics.confusion_matrix) == 2
    assert set(card.metrics.per_class) == set(card.classes)
    assert card.export.parity_max_abs_diff <= 1e-4 and card.export.onnx_sha256 == bundle.onnx_sha256
    assert card.infrastructure.cores >= 1 and card.infrastructure.ram_gb > 0
    assert card.infrastructure.libraries["scikit-learn"].startswith("1.")
    assert card.cost.core_hours > 0 and card.cost.estimated_cost == pytest.approx(card.cost.core_hours * 0.05)
    assert 0.05 <= card.recommended_threshold <= 0.95
    assert "probabilities" in card.how_to_consume and card.upstream == [] and card.seed == 0


def test_onnx_signature_and_outputs(demo_bundle: Path) -> None:
    model = onnx.load(demo_bundle / "model.onnx")
    (inp,) = model.graph.input
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    outs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outs == {"label": onnx.TensorProto.INT64, "probabilities": onnx.TensorProto.FLOAT}
    assert model.producer_name == "lockgate"
    ref = np.load(demo_bundle / "reference.npz")
    sess = ort.InferenceSession(str(demo_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    label, probs = sess.run(None, {"input": ref["holdout_inputs"]})
    assert label.dtype == np.int64 and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(label, probs.argmax(axis=1))
    card = ModelBundle.load(demo_bundle).card
    assert abs(float(np.mean(label == ref["holdout_labels"])) - card.metrics.accuracy) < 1e-9


def test_reference_npz_matches_the_documented_keys(demo_bundle: Path) -> None:
    ref = np.load(demo_bundle / "reference.npz")
    documented = {"inputs", "probabilities", "holdout_inputs", "holdout_labels", "seen_row_digests"}
    assert set(ref.files) == documented
    seen, card = ref["seen_row_digests"], ModelBundle.load(demo_bundle).card
    assert seen.dtype == np.uint64 and np.array_equal(seen, np.unique(seen))  # sorted, one per distinct row
    assert len(seen) == card.dataset.rows - card.dataset.splits["test"].rows  # train + validation
    assert ref["inputs"].dtype == np.float32 and ref["inputs"].shape == (64, 30)
    assert ref["probabilities"].dtype == np.float64 and ref["probabilities"].shape == (64, 2)
    assert ref["holdout_inputs"].dtype == np.float32 and ref["holdout_labels"].dtype == np.int64
    assert len(ref["holdout_labels"]) == ModelBundle.load(demo_bundle).card.dataset.splits["test"].rows
    assert (demo_bundle / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_with_segment_gets_sliced_metrics(write_csv, tmp_path: Path) -> None:
    path = train(
        TrainConfig(
            data=str(write_csv()),
            target="label",
            segment="region",
            model="naive_bayes",
            calibration="sigmoid",
            calibration_cv=0,
            trials=1,
            name="csv",
            out=tmp_path / "out",
            progress=False,
        )
    )
    card = ModelBundle.load(path).card
    assert card.classes == ["no", "yes"] and card.dataset.segment == "region"
    assert [f.name for f in card.features] == ["x1", "x2", "x3"]
    assert set(card.metrics.slices) == {"a", "b"}
    assert sum(s["rows"] for s in card.metrics.slices.values()) == card.metrics.rows
    ref = np.load(path / "reference.npz")
    assert sorted(set(ref["holdout_segments"].tolist())) == ["a", "b"]


def test_multiclass_card(tmp_path: Path) -> None:
    path = train(
        TrainConfig(
            data="wine",
            model="logistic_regression",
            calibration="isotonic",
            calibration_cv=0,
            trials=1,
            out=tmp_path,
            progress=False,
        )
    )
    card = ModelBundle.load(path).card
    assert card.task == "multiclass" and card.recommended_threshold is None
    assert card.classes == ["class_0", "class_1", "class_2"]
    assert np.array(card.metrics.confusion_matrix).shape == (3, 3)
    assert "isotonic" in card.calibration.reason


def test_reliability_bins_carry_their_row_counts_and_panels_their_class_name() -> None:
    """Issue 18, finding 10: per-bin counts on the diagram; titles read 'class_0', not 'class class_0'."""
    from training.reliability import panel_title, reliability_curve

    rng = np.random.default_rng(0)
    prob = rng.random(36)
    hit = (rng.random(36) < prob).astype(np.float64)
    xs, ys, counts, ece = reliability_curve(hit, prob, 10)
    assert counts.sum() == 36 and (counts > 0).all() and len(xs) == len(ys) == len(counts) <= 10
    assert 0 <= ece <= 1
    assert panel_title(["class_0", "class_1", "class_2"], 2) == "class_2"
    assert panel_title(["malignant", "benign"], 1) == "benign (positive class)"


def test_card_opsets_are_the_ones_the_file_imports(demo_bundle: Path) -> None:
    """Issue 18, finding 10: the card's opsets are read from model.onnx (the gate's file.opset reads the
    same), not a list of every domain the exporter could use."""
    model = onnx.load(demo_bundle / "model.onnx")
    card = ModelBundle.load(demo_bundle).card
    assert card.export.opset == {o.domain or "ai.onnx": o.version for o in model.opset_import}
