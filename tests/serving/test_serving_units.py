"""In-process checks of the serving parts: gate refusals, strict JSON, batching, answer encoding."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from serving import BundleRejectedError, InvalidInputError, OnnxPredictor, ServeSettings
from serving.batcher import MicroBatcher
from serving.codecs import decode_json_rapid, decode_json_stdlib, decode_v2, encode_predictions
from serving.validation import RowValidator

DECODERS = [decode_json_stdlib, decode_json_rapid]


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    "body, code",
    [
        (b"[NaN]", "non_finite"),
        (b'{"a": Infinity}', "non_finite"),
        (b"[1, -Infinity]", "non_finite"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b"\xff\xfe", "invalid_input"),
        (b"{", "invalid_json"),
        (b"", "invalid_json"),
    ],
)
def test_strict_json_refuses_with_a_code(decode, body, code):
    with pytest.raises(InvalidInputError) as info:
        decode(body)
    assert info.value.code == code and info.value.fix


@pytest.mark.parametrize("decode", DECODERS)
def test_both_decoders_agree_on_valid_json(decode):
    assert decode(b'{"model": "m", "inputs": [[1, 2.5, -3e2]]}') == {
        "model": "m",
        "inputs": [[1, 2.5, -300.0]],
    }


def test_float64_overflow_is_refused_on_either_path(demo_bundle):
    validator = RowValidator(OnnxPredictor.from_bundle(demo_bundle).card, 1024)
    with pytest.raises(InvalidInputError) as rapid:
        decode_json_rapid(b"[[1e400]]")
    row = decode_json_stdlib(b"[1e400" + b", 1" * (validator.n_features - 1) + b"]")
    with pytest.raises(InvalidInputError) as stdlib:
        validator.to_matrix([row])
    assert rapid.value.code == stdlib.value.code == "value_overflow"


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def test_only_a_passing_gate_bound_to_the_model_is_served(demo_bundle, tmp_path, gate_writer):
    assert OnnxPredictor.from_bundle(demo_bundle).ready

    no_gate = _copy(demo_bundle, tmp_path / "no-gate")
    (no_gate / "gate.json").unlink()
    with pytest.raises(BundleRejectedError, match="no readable gate.json"):
        OnnxPredictor.from_bundle(no_gate)
    assert OnnxPredictor.from_bundle(no_gate, canary=True).canary  # the gate's own --serve check

    failed = _copy(demo_bundle, tmp_path / "failed")
    gate_writer(failed, passed=False)
    with pytest.raises(BundleRejectedError, match="did not pass"):
        OnnxPredictor.from_bundle(failed)

    stale = _copy(demo_bundle, tmp_path / "stale")
    gate_writer(stale, sha256="0" * 64)
    with pytest.raises(BundleRejectedError, match="different model.onnx"):
        OnnxPredictor.from_bundle(stale)

    tampered = _copy(demo_bundle, tmp_path / "tampered")
    with open(tampered / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleRejectedError, match="sha256"):
        OnnxPredictor.from_bundle(tampered)


def test_micro_batcher_merges_concurrent_requests_and_splits_exactly(demo_bundle, rows):
    predictor = OnnxPredictor.from_bundle(demo_bundle)
    calls: list[int] = []
    batcher = MicroBatcher(predictor, max_rows=5, on_batch=lambda x, p: calls.append(x.shape[0]))
    x = np.array(rows, dtype=np.float32)
    parts = [x[0:1], x[1:3], x[3:4], x[4:8]]

    async def run():
        return await asyncio.gather(*(batcher.predict(p) for p in parts))

    results = asyncio.run(run())
    assert calls == [4, 4]  # 1+2+1 rows in one call, then 4 (5 would overflow max_rows)
    session = ort.InferenceSession(str(demo_bundle / "model.onnx"))
    for part, (labels, probs) in zip(parts, results, strict=True):
        want_labels, want_probs = session.run(["label", "probabilities"], {"input": part})
        assert np.array_equal(labels, want_labels) and np.allclose(probs, want_probs, atol=1e-6)


def test_answer_encoding_is_valid_json_with_warnings(demo_bundle, rows):
    predictor = OnnxPredictor.from_bundle(demo_bundle)
    validator = RowValidator(predictor.card, ServeSettings().max_batch_rows)
    x = validator.to_matrix([rows[0], [*rows[1][:-1], 1e9]])
    labels, probs = predictor.predict(x)
    text = encode_predictions(
        predictor.answer_prefix, predictor.classes, labels, probs, validator.warnings(x)
    )
    answer = json.loads(text)
    assert answer["model"]["sha256"] == predictor.sha256
    first, second = answer["predictions"]
    assert first["warnings"] == [] and "lies more than" in second["warnings"][0]
    assert set(first["probabilities"]) == set(predictor.classes)
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-5


def test_v2_decoder_checks_shape_type_and_binary_size():
    ok = json.dumps(
        {"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    )
    assert decode_v2(ok.encode(), None, 2).matrix.tolist() == [[1, 2], [3, 4]]
    header = json.dumps(
        {
            "inputs": [
                {"name": "input", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
            ]
        }
    ).encode()
    binary = np.array([[5, 6]], dtype=np.float32).tobytes()
    assert decode_v2(header + binary, str(len(header)), 2).matrix.tolist() == [[5, 6]]
    for body, length in [
        (ok.replace("FP32", "BYTES").encode(), None),
        (ok.replace("[2, 2]", "[2, 3]").encode(), None),
        (ok.replace("[1, 2, 3, 4]", '[1, 2, 3, "4"]').encode(), None),
        (header + binary[:4], str(len(header))),
        (header + binary, "999999"),
    ]:
        with pytest.raises(InvalidInputError):
            decode_v2(body, length, 2)
