"""The real gateway answers images (nested list, base64 PNG) and token sequences, and refuses wrong sizes,
empty and over-long sequences with a 422 that says what the model takes; the real gate fuzzes both kinds.

Two small bundles are trained by the real trainer (a CNN on digits; a multi-input network on the
generated table + token sequence set, so a request carries numbers and tokens; families ``cnn`` /
``multi`` with 3 epochs so the module stays cheap), passed by the real gate with ``--serve``
(its sandboxed ``inputs`` cases and its ``serve`` probes include the image / sequence ones), registered,
released and served by one gateway.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from cascade_registry.artifacts import GateReport, ModelBundle
from safety import GatePolicy, run_gate
from serving.errors import InvalidInputError
from serving.validation import RowValidator
from tests.bundles import TEST_KEY
from tests.serving.conftest import released_gateway
from training.config import TrainConfig
from training.datasets import load_dataset
from training.families import get_family, register_family, unregister_family
from training.trainer import train

REPORTS: dict[str, GateReport] = {}


def _train(out: Path, name: str, data: str, family: str) -> Path:
    base = get_family(family)
    tiny = dataclasses.replace(base, name=f"{family}-tiny", defaults={**base.defaults, "epochs": 3})
    register_family(tiny, replace=True)
    try:
        config = TrainConfig(data=data, model=tiny.name, trials=1, calibration_cv=0, refit=False, name=name,
                             out=out, progress=False, calibration="temperature")
        bundle = train(config)
    finally:
        unregister_family(tiny.name)
    REPORTS[name] = run_gate(bundle, GatePolicy(), serve=True, sign_key=TEST_KEY)
    return bundle


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    work = tmp_path_factory.mktemp("input-kinds")
    bundles = [_train(work, "digits-cnn", "digits", "cnn"), _train(work, "mixed", "mixed_inputs", "multi")]
    with released_gateway(work, bundles) as (gw, key):
        yield gw.url, {"Authorization": f"Bearer {key}"}


def predict(served, model: str, instances: list) -> httpx.Response:
    url, headers = served
    return httpx.post(url + "/predict", json={"model": model, "instances": instances}, headers=headers,
                      timeout=30)


def png_of(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.round(image / 16 * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def refused(answer: httpx.Response, code: str) -> str:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["fix"], error
    return error["message"]


@pytest.mark.parametrize(("model", "probed", "refusals"), [
    ("digits-cnn", [], ["image_wrong_size=422", "image_png_wrong_size=422", "image_not_an_image=422"]),
    ("mixed", ["tokens_empty_sequence", "tokens_ids_beyond_vocabulary"],
     ["tokens_empty_sequence=422", "tokens_over_long_sequence=422", "tokens_tokens_not_strings=422"]),
])
def test_the_real_gate_fuzzes_the_input_kinds(served, model: str, probed: list[str], refusals: list[str]
                                              ) -> None:
    report = REPORTS[model]
    assert report.passed, [c for c in report.checks if c.status != "pass"]
    checks = {c.name: c for c in report.checks}
    assert all(p in checks["inputs"].message for p in probed), checks["inputs"].message
    assert checks["serve"].status == "pass"
    assert all(p in checks["serve"].message for p in refusals), checks["serve"].message


def test_card_describes_the_image_input(served, tmp_path_factory) -> None:
    url, headers = served
    card = httpx.get(url + "/models/digits-cnn", headers=headers, timeout=10).json()
    text = str(card)
    assert "image" in text and "[8, 8, 1]" in text


def test_image_as_nested_list_png_and_columns_agree(served) -> None:
    digit = load_dataset("digits", 0).X[:3].reshape(3, 8, 8)
    by_list = predict(served, "digits-cnn", [{"image": d.tolist()} for d in digit])
    assert by_list.status_code == 200, by_list.text
    rows = by_list.json()["predictions"]
    assert len(rows) == 3 and all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    by_png = predict(served, "digits-cnn", [{"image": png_of(d)} for d in digit])
    assert by_png.status_code == 200, by_png.text
    assert [r["label"] for r in by_png.json()["predictions"]] == [r["label"] for r in rows]
    url, headers = served
    flat = httpx.post(url + "/predict", json={"model": "digits-cnn", "inputs": digit.reshape(3, 64).tolist()},
                      headers=headers, timeout=30)
    assert flat.json()["predictions"] == rows


def test_wrong_image_sizes_and_non_images_get_422(served) -> None:
    digit = load_dataset("digits", 0).X[0].reshape(8, 8)
    message = refused(predict(served, "digits-cnn", [{"image": digit[:7].tolist()}]), "image_size")
    assert "instances[0].image" in message and "8x8" in message
    big = png_of(np.zeros((9, 9)))
    assert "9x9 PNG" in refused(predict(served, "digits-cnn", [{"image": big}]), "image_size")
    refused(predict(served, "digits-cnn", [{"image": base64.b64encode(b"GIF89a....").decode()}]),
            "not_an_image")
    refused(predict(served, "digits-cnn", [{"image": "x" * 200_000}]), "image_too_large")
    refused(predict(served, "digits-cnn", [{"image": (digit * 100).tolist()}]), "pixel_range")


TABLE = {"x0": 0.5, "x1": -0.1, "x2": 1.0}


def test_sequences_answer_and_refuse_empty_or_too_long(served) -> None:
    ok = predict(served, "mixed", [{**TABLE, "tokens": ["alpha", "open", "beta", "close"]},
                                   {**TABLE, "tokens": "close gamma open"}])
    assert ok.status_code == 200, ok.text
    assert [r["warnings"] for r in ok.json()["predictions"]] == [[], []]
    assert all(r["label"].endswith(("_low", "_high")) for r in ok.json()["predictions"])
    unknown = predict(served, "mixed", [{**TABLE, "tokens": ["open", "banana", "close"]}])
    assert unknown.status_code == 200, unknown.text
    assert "outside the vocabulary" in unknown.json()["predictions"][0]["warnings"][0]
    assert "empty sequence" in refused(predict(served, "mixed", [{**TABLE, "tokens": []}]), "empty_sequence")
    message = refused(predict(served, "mixed", [{**TABLE, "tokens": ["alpha"] * 17}]), "sequence_too_long")
    assert "at most 16" in message
    refused(predict(served, "mixed", [{**TABLE, "tokens": ["open", 3]}]), "wrong_kind")
    refused(predict(served, "mixed", [{"tokens": ["open", "close"]}]), "missing_value")  # the table part


def test_sequence_card_records_the_tokenizer(served, tmp_path_factory) -> None:
    card = ModelBundle.read_card(next(tmp_path_factory.getbasetemp().glob("input-kinds*/mixed-1")))
    table, spec = card.inputs
    assert table.kind == "tabular" and table.columns == ["x0", "x1", "x2"]
    assert card.details["topology"]["encoders"][0].startswith("table (tabular)")
    assert spec.kind == "sequence" and spec.max_length == 16 and "gateway" in spec.tokenizer
    assert len(spec.columns) == 16 and spec.vocabulary[-2:] == ["open", "close"]


def test_unknown_tokens_refused_when_the_card_says_error(served, tmp_path_factory) -> None:
    card = ModelBundle.read_card(next(tmp_path_factory.getbasetemp().glob("input-kinds*/mixed-1")))
    table, spec = card.inputs
    strict = card.model_copy(update={"inputs": [table, spec.model_copy(update={"unknown": "error"})]})
    validator = RowValidator(strict, max_batch_rows=8)
    x, _, notes = validator.from_instances([{**TABLE, "tokens": ["open", "close"]}])
    assert x.shape == (1, 19) and list(x[0, -2:]) == [spec.vocabulary.index("open") + 2,
                                                      spec.vocabulary.index("close") + 2]
    with pytest.raises(InvalidInputError, match="outside the model's vocabulary: 'banana'") as caught:
        validator.from_instances([{**TABLE, "tokens": ["open", "banana"]}])
    assert caught.value.code == "unknown_token"
