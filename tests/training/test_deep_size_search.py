"""The network size search through `lockgate train --size-search`: the chapter's recipe, its curve in the
card and as a PNG, and the rule it followed checked against the scores it recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.cli import main
from training.deep.size_search import GROWTH, OVERFIT_GAP, OVERFIT_SCORE, SIZE_SEARCH_PNG


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("size")
    code = main(["train", "--data", "wine", "--model", "mlp", "--size-search", "--trials", "4",
                 "--calibration-cv", "0", "--quiet", "--out", str(out), "--name", "wine-size"])
    assert code == 0
    bundle = out / "wine-size-1"
    return json.loads((bundle / "card.json").read_text()), bundle


def _overfits(step: dict) -> bool:
    return step["train"] >= OVERFIT_SCORE or step["train"] - step["validation"] >= OVERFIT_GAP


def test_size_search_follows_the_recipe_and_records_its_curve(card):
    card, bundle = card
    search, curve = card["search"], card["details"]["size_search"]["curve"]
    assert search["method"].startswith("network size search")
    assert 1 <= search["trials"] == len(curve) <= 4
    assert (curve[0]["phase"], curve[0]["layers"], curve[0]["units"]) == ("start", 2, 128)
    for before, step in zip(curve, curve[1:], strict=False):
        if step["phase"] == "grow":  # grow only while not overfitted, along GROWTH
            assert not _overfits(before) and before["phase"] in ("start", "grow")
            assert (step["layers"], step["units"]) in GROWTH
        else:  # regularize the size that overfitted, only while validation improves
            assert step["phase"] == "regularize" and step["dropout"] > 0
            assert (step["layers"], step["units"]) == (before["layers"], before["units"])
            if before["phase"] == "regularize":
                assert before["validation"] > curve[curve.index(before) - 1]["validation"]
    best = max(range(len(curve)), key=lambda i: (curve[i]["validation"], -i))
    assert card["details"]["size_search"]["winner_step"] == best + 1
    assert search["best_params"]["units"] == curve[best]["units"]
    assert all(c["train_score"] is not None and c["phase"] for c in search["candidates"])
    png = bundle / SIZE_SEARCH_PNG
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_size_search_is_refused_where_it_cannot_apply(tmp_path: Path, capsys):
    assert main(["train", "--model", "svm", "--size-search", "--quiet", "--out", str(tmp_path)]) == 2
    assert "need --model mlp" in capsys.readouterr().err
    assert main(["train", "--model", "mlp", "--size-search", "--init-from", "a:1", "--quiet",
                 "--out", str(tmp_path)]) == 2
    assert "the parent fixes the network size" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
