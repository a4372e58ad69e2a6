"""Transfer learning: weights.pt in the bundle (read as hostile), --init-from/--freeze/--unfreeze-after,
the parent in the card and as registry lineage, and the measured speed-up on the other half of digits."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from cascade_registry.registry import Registry
from cascade_registry.rendering import render_impact, render_version
from lockgate.cli import main
from training.deep.errors import DeepConfigError
from training.deep.estimator import MLPClassifier
from training.deep.transfer import TransferMLPClassifier, epochs_to_score, resolve_parent
from training.deep.weights import linear_layers, read_weights, weights_bytes

TARGET = 0.9  # validation accuracy on digits 5-9


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def parent_file(digits, tmp_path_factory) -> Path:
    """An MLP trained on digits 0-4, its weights.pt written as the bundle would."""
    X, y = digits
    torch.set_num_threads(1)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), epochs=20, device="cpu", random_state=0)
    mlp.fit(X[y < 5], y[y < 5])
    path = tmp_path_factory.mktemp("parent") / "weights.pt"
    path.write_bytes(weights_bytes(mlp))
    return path


def _child(parent: Path | None, **kw) -> TransferMLPClassifier:
    extra = {"parent": resolve_parent(str(parent), None).as_param()} if parent else {}
    return TransferMLPClassifier(hidden_layer_sizes=(64,), epochs=8, early_stopping=False, device="cpu",
                                 random_state=0, **extra, **kw)


def _other_half(digits) -> tuple[np.ndarray, ...]:
    X, y = digits
    idx = np.flatnonzero(y >= 5)
    np.random.default_rng(0).shuffle(idx)
    train, val = idx[:100], idx[400:800]  # few training rows: where a parent helps
    return X[train], y[train], X[val], y[val]


def test_a_parent_trained_on_digits_0_to_4_speeds_up_training_on_5_to_9(digits, parent_file):
    Xt, yt, Xv, yv = _other_half(digits)
    scratch = _child(None).fit(Xt, yt, Xv, yv)
    transfer = _child(parent_file).fit(Xt, yt, Xv, yv)
    without = epochs_to_score(scratch.history_, TARGET)
    with_parent = epochs_to_score(transfer.history_, TARGET)
    # measured (seeded, CPU): with the parent 1 epoch; from scratch it has not got there after 8
    assert with_parent is not None and with_parent <= 2
    assert without is None or without >= with_parent + 3
    assert transfer.card_parent().head == "probed"
    assert transfer.card_parent().layers_copied == 1


def test_freeze_keeps_the_parents_layers_until_unfreeze_after(digits, parent_file):
    Xt, yt, Xv, yv = _other_half(digits)
    first = linear_layers(read_weights(parent_file).network())[0].weight
    frozen = _child(parent_file, freeze=1).fit(Xt, yt, Xv, yv)
    assert torch.equal(linear_layers(frozen.network_)[0].weight.detach(), first)
    thawed = _child(parent_file, freeze=1, unfreeze_after=2).fit(Xt, yt, Xv, yv)
    assert not torch.equal(linear_layers(thawed.network_)[0].weight.detach(), first)
    ref = thawed.card_parent()
    assert (ref.frozen_layers, ref.unfreeze_after, ref.source) == (1, 2, "checkpoint")


def test_a_parent_of_another_input_width_is_refused_clearly(digits, parent_file):
    Xt, yt, Xv, yv = _other_half(digits)
    with pytest.raises(DeepConfigError, match="the parent reads 64 features, this data has 63"):
        _child(parent_file).fit(Xt[:, 1:], yt, Xv[:, 1:], yv)
    with pytest.raises(DeepConfigError, match="topology"):
        TransferMLPClassifier(parent=resolve_parent(str(parent_file), None).as_param(),
                              hidden_layer_sizes=(32, 32), epochs=1, device="cpu").fit(Xt, yt)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/lockgate-pwned",))


def test_weights_are_read_as_hostile(parent_file, tmp_path: Path):
    code = tmp_path / "code.pt"
    code.write_bytes(pickle.dumps({"format": "lockgate-mlp-weights", "x": _Boom()}, protocol=2))
    with pytest.raises(DeepConfigError, match="not a plain torch weights file"):
        read_weights(code)
    assert not Path("/tmp/lockgate-pwned").exists()
    huge = tmp_path / "huge.pt"
    with open(huge, "wb") as f:
        f.truncate(65 * 2**20)  # sparse: refused on its size before a byte is read
    with pytest.raises(DeepConfigError, match="more than the limit of 64 MiB"):
        read_weights(huge)
    raw = torch.load(parent_file, weights_only=True)
    raw["state_dict"]["body.0.weight"] = torch.zeros(3, 3)
    torch.save(raw, tmp_path / "shape.pt")
    with pytest.raises(DeepConfigError, match="do not fit the declared network"):
        read_weights(tmp_path / "shape.pt")
    raw = torch.load(parent_file, weights_only=True)
    raw["state_dict"]["body.0.weight"][0, 0] = float("nan")
    torch.save(raw, tmp_path / "nan.pt")
    with pytest.raises(DeepConfigError, match="non-finite"):
        read_weights(tmp_path / "nan.pt")
    raw["hidden_layer_sizes"] = [8192] * 32
    torch.save(raw, tmp_path / "big.pt")
    with pytest.raises(DeepConfigError, match="parameters"):
        read_weights(tmp_path / "big.pt")


# ------------------------------------------------------------------------------------------ CLI + registry
def _csv(digits, classes: range, path: Path, drop_first: bool = False) -> Path:
    X, y = digits
    keep = np.flatnonzero(np.isin(y, list(classes)))[:300]  # a few rows keep the two CLI runs cheap
    df = pd.DataFrame(X[keep], columns=[f"p{i}" for i in range(64)])
    df["digit"] = [f"d{v}" for v in y[keep]]
    (df.iloc[:, 1:] if drop_first else df).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def lineage(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage")
    a, b = _csv(digits, range(5), root / "a.csv"), _csv(digits, range(5, 10), root / "b.csv")
    common = ["--target", "digit", "--model", "mlp", "--trials", "1", "--calibration-cv", "0", "--quiet",
              "--out", str(root / "out")]
    assert main(["train", "--data", str(a), "--name", "lower", *common]) == 0
    url = f"sqlite:///{root / 'registry.db'}"
    with Registry.open(url) as reg:
        reg.register(root / "out" / "lower-1")
    code = main(["train", "--data", str(b), "--name", "upper", "--init-from", "lower:1",
                 "--registry-url", url, "--freeze", "1", "--unfreeze-after", "3", *common])
    assert code == 0
    return root, url, common


def test_train_init_from_a_registered_parent_records_it_in_card_and_registry(lineage):
    root, url, _ = lineage
    parent_bundle, child_bundle = root / "out" / "lower-1", root / "out" / "upper-1"
    assert (parent_bundle / "weights.pt").stat().st_size > 1000
    card = json.loads((child_bundle / "card.json").read_text())
    p = card["parent"]
    assert (p["source"], p["name"], p["version"], p["frozen_layers"], p["unfreeze_after"]) == (
        "registry", "lower", 1, 1, 3)
    assert p["layers_copied"] == 2 and p["head"] == "probed"
    assert p["hidden_layer_sizes"] == [128, 128]
    assert card["details"]["transfer"]["frozen_layers"] == 1
    with Registry.open(url) as reg:
        child = reg.register(child_bundle)
        assert str(child.parent) == "lower:1"
        assert "parent       lower:1 (registry; 2 layer(s) copied, head probed, first 1 layer(s) frozen " \
               "until epoch 3)" in render_version(child, reg.transitions("upper:1"))
        impact = reg.impact("lower")
        assert [str(d.child) for d in impact.derived] == ["upper:1"]
        assert "trained from its weights" in render_impact(impact)


def test_init_from_errors_are_one_clear_line(lineage, digits, capsys):
    root, url, common = lineage
    narrow = _csv(digits, range(5, 10), root / "narrow.csv", drop_first=True)
    cases = [
        (["--data", str(narrow), "--init-from", str(root / "out" / "lower-1")],
         "the parent reads 64 features, this data has 63"),
        (["--data", str(root / "b.csv"), "--init-from", "nobody:3", "--registry-url", url],
         "no such version in the registry"),
        (["--data", str(root / "b.csv"), "--init-from", "lower:1", "--registry-url", url, "--freeze", "5"],
         "the parent has only 2 hidden layers"),
        (["--data", str(root / "b.csv"), "--freeze", "1"], "there is no --init-from parent"),
    ]
    for extra, message in cases:
        assert main(["train", "--name", "bad", *extra, *common]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    svm = [a if a != "mlp" else "svm" for a in common]
    args = ["--data", str(root / "b.csv"), "--name", "bad", "--init-from", "lower:1", *svm]
    assert main(["train", *args]) == 2
    assert "need --model mlp" in capsys.readouterr().err
    assert not (root / "out" / "bad-1").exists()
