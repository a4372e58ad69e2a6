"""Deep-model pieces reached through `lockgate train`: the overfit check, learning curves in the bundle."""

import json
from pathlib import Path

from lockgate.cli import main


def test_overfit_one_batch_from_the_cli_passes_and_writes_nothing(tmp_path: Path, capsys):
    code = main(["train", "--model", "mlp", "--overfit-one-batch", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    assert "can overfit one batch" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_mlp_bundle_carries_learning_curves(tmp_path: Path):
    args = ["--model", "mlp", "--calibration-cv", "0", "--trials", "1", "--quiet", "--out", str(tmp_path),
            "--name", "m"]
    code = main(["train", *args])
    assert code == 0
    bundle = tmp_path / "m-1"
    card = json.loads((bundle / "card.json").read_text())
    assert (bundle / "learning_curves.png").stat().st_size > 1000
    curves = card["details"]["learning_curves"]
    assert 1 <= curves["best_epoch"] <= curves["epochs_run"]
    assert card["details"]["learning_curves_png"] == "learning_curves.png"
