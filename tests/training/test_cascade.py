"""Cascades in training: ``train --upstream``, ``train --retrain-from`` and ``analyze --upstream-truth``.

One module fixture builds the cascade of :func:`tests.cascades.build_cascade` on the generated tables of
:mod:`training.synthetic`: ``a`` (risky from g1..g4 and region) trained, gate verdict signed, registered
and released in a real SQLite registry; ``b`` (default from those, h1, h2 and a's output) trained with
``--upstream a:1``, registered and released; ``a:2`` registered but not released.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from cascade_registry import Registry
from cascade_registry.artifacts import MODEL_FILE, REFERENCE_FILE, ModelBundle
from tests.cascades import FAST, Cascade, build_cascade, publish
from training.analysis_cli import main as analyze_main
from training.cli import main as train_main
from training.synthetic import A_INPUTS as A_COLUMNS

A_INPUTS = list(A_COLUMNS)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> Cascade:
    c = build_cascade(tmp_path_factory.mktemp("cascade"))
    assert c.train_a("--model", "logistic_regression", "--version", "2") == 0
    publish(c.url, c.bundle("a", 2), release=False)
    return c


def _run_a(cascade: Cascade, frame: dict[str, np.ndarray]) -> np.ndarray:
    """a's graph run directly with ONNX Runtime (not through training.upstream), on one thread: a tree
    ensemble's sums are ordered by thread, so only single-threaded runs agree to the bit."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    model = str(cascade.bundle("a") / MODEL_FILE)
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    X = np.column_stack([frame[c] for c in A_INPUTS if c != "region"]).astype(np.float32)
    C = frame["region"].astype(object).reshape(-1, 1)
    return sess.run(["probabilities"], {"input": X, "categorical": C})[0]


def test_upstream_features_are_the_upstream_graphs_outputs(cascade: Cascade):
    card = ModelBundle.load(cascade.bundle("b")).card
    names = card.feature_names
    assert names[-1] == "a__p_yes" and names[:-1] == [*A_INPUTS, "h1", "h2"]
    ref = np.load(cascade.bundle("b") / REFERENCE_FILE)
    numeric = [f.name for f in card.numeric_features]
    columns = {n: ref["holdout_inputs"][:, j] for j, n in enumerate(numeric)}
    columns["region"] = ref["holdout_categorical_inputs"][:, 0]
    assert [f.name for f in card.categorical_features] == ["region"]
    expected = _run_a(cascade, columns)[:, 1]  # binary: the positive class only, classes[1] = 'yes'
    np.testing.assert_array_equal(columns["a__p_yes"], expected)
    assert len(set(expected.round(3).tolist())) > 20  # real probabilities, not a constant


def test_the_card_pins_the_upstream(cascade: Cascade):
    card = ModelBundle.load(cascade.bundle("b")).card
    a = ModelBundle.load(cascade.bundle("a"))
    (pin,) = card.upstream
    assert (pin.name, pin.version, pin.onnx_sha256, pin.output) == ("a", 1, a.onnx_sha256, "probabilities")
    assert pin.inputs == A_INPUTS and pin.features == ["a__p_yes"] and a.card.classes == ["no", "yes"]
    assert [f.upstream for f in card.features] == [None] * 7 + ["a"]
    assert card.train_options["upstream"] == ["a:1"] and card.train_options["model"] == "logistic_regression"
    with Registry.open(cascade.url, create=False) as reg:  # registering b recorded the edge
        assert ("b", 1, "a", 1) in reg.cascade().pins


def test_the_upstream_makes_the_downstream_better(cascade: Cascade):
    """Without a's output b (a linear model) cannot see the g1*g2 interaction behind risky."""
    with_a = ModelBundle.load(cascade.bundle("b")).card.metrics.accuracy
    assert train_main(["--data", str(cascade.tables["b"]), "--target", "default", "--name", "plain",
                       "--model", "logistic_regression", *FAST, "--out", str(cascade.root / "out")]) == 0
    plain = ModelBundle.load(cascade.bundle("plain")).card.metrics.accuracy
    assert with_a > plain + 0.05


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--upstream", "a:9"], "upstream a:9 is not registered"),
        (["--upstream", "a:2"], "upstream a:2 is gated_passed, not released"),
        (["--upstream", "b:1"], "consumes upstream models itself (a:1)"),
        (["--upstream", "a:1", "--drop", "region"], "column 'region' is an input of upstream a:1 but --drop"),
        (["--upstream", "a:1", "--categorical", "g1"], "column 'g1' is numeric for upstream a:1 but "
                                                        "categorical"),
        (["--upstream", "a:1", "--upstream", "a:1"], "names one model twice"),
        (["--upstream", "A:1"], "'A:1' is not NAME:VERSION"),
        (["--upstream", "a:1", "--upstream-output", "label", "--upstream-output", "label"],
         "2 values for 1 upstream"),
    ],
)
def test_bad_upstreams_are_refused_in_one_line(cascade: Cascade, capsys, options, message):
    assert cascade.train_b("--name", "bad", *options) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (cascade.root / "out" / "bad-1").exists()


def test_an_upstream_input_missing_from_the_table_is_refused(cascade: Cascade, tmp_path, capsys):
    table = tmp_path / "no_g3.csv"
    pd.read_csv(cascade.tables["b"]).drop(columns=["g3"]).to_csv(table, index=False)
    code = cascade.train("--data", str(table), "--target", "default", "--name", "bad", "--upstream", "a:1")
    assert code == 2
    assert "upstream a:1 needs the column 'g3'" in capsys.readouterr().err


def test_gaps_the_upstream_refuses_are_refused(cascade: Cascade, tmp_path, capsys):
    """An upstream trained with --missing error has no imputation in its graph: rows with gaps there are
    refused by the gateway, so training on them is refused too."""
    strict = ["--data", str(cascade.tables["a"]), "--target", "risky", "--name", "strict"]
    assert cascade.train(*strict, "--missing", "error", "--model", "logistic_regression") == 0
    publish(cascade.url, cascade.bundle("strict"), release=True)
    table = tmp_path / "gaps.csv"
    frame = pd.read_csv(cascade.tables["b"])
    frame.loc[:2, "g1"] = np.nan
    frame.to_csv(table, index=False)
    capsys.readouterr()
    code = cascade.train("--data", str(table), "--target", "default", "--name", "bad",
                         "--upstream", "strict:1")
    assert code == 2
    assert "column 'g1' has 3 missing values but upstream strict:1 refuses" in capsys.readouterr().err


def test_no_registry_is_a_usage_error(cascade: Cascade, tmp_path, capsys):
    code = train_main(["--data", str(cascade.tables["b"]), "--target", "default", "--upstream", "a:1",
                       "--registry-url", str(tmp_path / "none.db"), *FAST, "--out", str(tmp_path)])
    assert code == 2 and "cannot be opened" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_a_label_output_is_one_categorical_feature(cascade: Cascade):
    assert cascade.train_b("--name", "blabel", "--model", "logistic_regression", "--upstream", "a:1",
                           "--upstream-output", "label") == 0
    card = ModelBundle.load(cascade.bundle("blabel")).card
    spec = card.features[-1]
    assert (spec.name, spec.kind, spec.upstream) == ("a__label", "categorical", "a")
    assert set(spec.levels) <= {"no", "yes"} and card.upstream[0].output == "label"


def test_retrain_from_with_the_same_upstream_is_byte_identical(cascade: Cascade, tmp_path, capsys):
    code = train_main(["--retrain-from", "b:1", "--data", str(cascade.tables["b"]), "--version", "1",
                       "--out", str(tmp_path), "--registry-url", cascade.url, "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "retrained from b:1" in printed and "upstreams a 1 -> 1" in printed
    assert "(the same table as b:1)" in printed
    again = (tmp_path / "b-1" / MODEL_FILE).read_bytes()
    assert again == (cascade.bundle("b") / MODEL_FILE).read_bytes()


def test_retrain_from_says_when_the_table_changed(cascade: Cascade, tmp_path, capsys):
    table = tmp_path / "b_fewer.csv"
    pd.read_csv(cascade.tables["b"]).iloc[:-40].to_csv(table, index=False)
    assert train_main(["--retrain-from", "b:1", "--data", str(table), "--out", str(tmp_path),
                       "--registry-url", cascade.url, "--quiet"]) == 0
    printed = capsys.readouterr().out
    old = ModelBundle.load(cascade.bundle("b")).card.dataset.sha256
    assert f"differs from b:1's {old[:12]}" in printed
    new = ModelBundle.load(tmp_path / "b-2").card  # the next version after the newest registered one
    assert new.dataset.rows == 460 and new.ref.version == 2


def test_retrain_from_refusals(cascade: Cascade, tmp_path, capsys):
    base = ["--retrain-from", "b:1", "--out", str(tmp_path), "--registry-url", cascade.url]
    assert train_main(base) == 2
    assert "needs --data again" in capsys.readouterr().err
    assert train_main([*base, "--data", str(cascade.tables["b"]), "--upstream", "a:2"]) == 2
    assert "a:2 is gated_passed, not released" in capsys.readouterr().err
    assert train_main([*base, "--data", str(cascade.tables["b"]), "--upstream", "zz:1"]) == 2
    assert "b:1 does not consume it" in capsys.readouterr().err


def test_retrain_from_moves_to_the_released_upstream(cascade: Cascade, tmp_path, capsys):
    """A registry where a:2 is released: b:1 retrained against it becomes b:2 pinned on a:2, same splits."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    copies = {}
    for name, version in (("a", 1), ("b", 1), ("a", 2)):
        copies[name, version] = tmp_path / f"{name}-{version}"
        shutil.copytree(cascade.bundle(name, version), copies[name, version])
    publish(url, copies["a", 1], release=True)
    publish(url, copies["b", 1], release=False)
    publish(url, copies["a", 2], release=True)
    assert train_main(["--retrain-from", "b:1", "--data", str(cascade.tables["b"]), "--out", str(tmp_path),
                       "--registry-url", url, "--quiet"]) == 0
    assert "upstreams a 1 -> 2" in capsys.readouterr().out
    new, old = (ModelBundle.load(tmp_path / f"b-{v}").card for v in (2, 1))
    assert [(u.name, u.version) for u in new.upstream] == [("a", 2)]
    assert new.dataset.splits == old.dataset.splits and new.dataset.sha256 == old.dataset.sha256
    moved = ("version", "upstream", "upstream_output")
    same = {k: v for k, v in new.train_options.items() if k not in moved}
    assert same == {k: v for k, v in old.train_options.items() if k not in moved}
    assert new.train_options["upstream_output"] == ["probabilities"]


def test_analyze_attributes_the_error_to_the_stages(cascade: Cascade, tmp_path, capsys):
    out = tmp_path / "analysis"
    code = analyze_main(["b:1", "--data", str(cascade.tables["labelled"]), "--upstream-truth", "a=risky",
                         "--registry-url", cascade.url, "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "attribution.json").read_text())
    up, own = report["stages"]
    assert up["stage"] == "a:1 (probabilities)" and own["kind"] == "downstream"
    # the upstream is the bottleneck: making it perfect removes most of b's error
    assert up["share_of_error"] > own["share_of_error"]
    assert abs(up["share_of_error"] + own["share_of_error"] - 1) < 1e-6  # one upstream: the shares add up
    assert up["error_rate"] == own["error_rate"] < report["error_rate"]
    assert (out / "attribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "share of error" in printed and "a:1 (probabilities)" in printed


def test_analyze_refusals(cascade: Cascade, tmp_path, capsys):
    data = str(cascade.tables["labelled"])
    assert analyze_main(["b:1", "--data", data, "--upstream-truth", "zz=risky", "--registry-url",
                         cascade.url, "--out", str(tmp_path)]) == 2
    assert "b:1's upstreams are ['a']" in capsys.readouterr().err
    assert analyze_main([str(cascade.bundle("b")), "--data", data, "--upstream-truth", "a=h1",
                         "--registry-url", cascade.url, "--out", str(tmp_path)]) == 2
    assert "not classes of a:1" in capsys.readouterr().err
    assert analyze_main(["b:1", "--data", data, "--upstream-truth", "a", "--registry-url", cascade.url]) == 2
    assert "is not NAME=COL" in capsys.readouterr().err
    assert analyze_main(["b:1", "--data", data, "--registry-url", cascade.url]) == 2
    assert "pass --upstream-truth a=COL" in capsys.readouterr().err


def test_a_changed_upstream_model_file_is_refused(cascade: Cascade, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tampered.db'}"
    copy = tmp_path / "a-1"
    shutil.copytree(cascade.bundle("a"), copy)
    publish(url, copy, release=True)
    model = copy / MODEL_FILE
    model.write_bytes(model.read_bytes() + b"\0")
    code = train_main(["--data", str(cascade.tables["b"]), "--target", "default", "--upstream", "a:1",
                       "--registry-url", url, *FAST, "--out", str(tmp_path)])
    assert code == 2
    assert "is not the file the registry recorded" in capsys.readouterr().err



def test_two_upstreams_with_their_own_outputs_and_their_error_attribution(cascade: Cascade, tmp_path, capsys):
    """b2 on a:1 (probabilities) and c:1 (label, a second model of the same task): both feed b2, in order,
    and the attribution has one row per upstream plus b2's own."""
    assert cascade.train("--data", str(cascade.tables["a"]), "--target", "risky", "--name", "c",
                         "--model", "logistic_regression") == 0
    publish(cascade.url, cascade.bundle("c"), release=True)
    assert cascade.train_b("--name", "b2", "--model", "logistic_regression", "--upstream", "a:1",
                           "--upstream", "c:1", "--upstream-output", "probabilities",
                           "--upstream-output", "label") == 0
    card = ModelBundle.load(cascade.bundle("b2")).card
    assert [(u.name, u.output, u.features) for u in card.upstream] == [
        ("a", "probabilities", ["a__p_yes"]), ("c", "label", ["c__label"])]
    assert card.feature_names[-2:] == ["a__p_yes", "c__label"]
    out = tmp_path / "analysis"
    assert analyze_main([str(cascade.bundle("b2")), "--data", str(cascade.tables["labelled"]),
                         "--upstream-truth", "a=risky", "--upstream-truth", "c=risky",
                         "--registry-url", cascade.url, "--out", str(out)]) == 0
    stages = json.loads((out / "attribution.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == ["a:1 (probabilities)", "c:1 (label)", "b2:1 itself"]
    # c (a linear model of an interaction) is a weaker upstream than a (a tree ensemble)
    assert stages[0]["upstream_accuracy"] > stages[1]["upstream_accuracy"]
    assert "(all upstreams perfect)" in capsys.readouterr().out
