"""A real gateway (``lockgate serve --canary``) answering good and bad requests; metrics; v2 protocol."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest


def strict_json(text: str):
    """Parse refusing NaN/Infinity, so a bare NaN in an answer fails the test."""

    def refuse(name: str):
        raise AssertionError(f"answer contains bare {name}")

    return json.loads(text, parse_constant=refuse)


def post(gw, body, content_type: str = "application/json", path: str = "/predict") -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(gw.url + path, content=data, headers={"Content-Type": content_type}, timeout=10)


def test_answer_carries_model_identity_and_matches_onnx_runtime(canary, demo_bundle: Path, rows):
    r = post(canary, {"model": "demo", "inputs": rows})
    assert r.status_code == 200, r.text
    answer = strict_json(r.text)
    card = json.loads((demo_bundle / "card.json").read_text())
    model = answer["model"]
    assert model["name"] == "demo" and model["version"] == 1 and answer["canary"] is True
    assert model["sha256"] == card["export"]["onnx_sha256"]
    assert answer["schema"] == "lockgate.predict/2"
    assert model == {
        "name": "demo",
        "version": 1,
        "sha256": card["export"]["onnx_sha256"],
        "calibration": "sigmoid",
        "threshold": card["recommended_threshold"],
        "upstream": [],
        "card_url": "/models/demo?version=1",
    }
    assert "consume" not in answer  # the prose is opt-in
    explained = strict_json(post(canary, {"model": "demo", "inputs": rows, "explain": True}).text)
    assert "calibrated" in explained["consume"]
    assert explained["predictions"] == answer["predictions"]
    session = ort.InferenceSession(str(demo_bundle / "model.onnx"))
    labels, probs = session.run(["label", "probabilities"], {"input": np.array(rows, dtype=np.float32)})
    assert len(answer["predictions"]) == len(rows)
    for pred, label, p in zip(answer["predictions"], labels, probs, strict=True):
        assert pred["label"] == card["classes"][label]
        got = [pred["probabilities"][c] for c in card["classes"]]
        assert np.allclose(got, p, atol=1e-6)
        assert pred["warnings"] == []


def test_rows_as_objects_and_out_of_range_warning(canary, demo_bundle: Path, rows):
    names = [f["name"] for f in json.loads((demo_bundle / "card.json").read_text())["features"]]
    near = dict(zip(names, rows[0], strict=True))
    far = {**near, names[2]: 1e6}
    r = post(canary, {"model": "demo", "inputs": [near, far]})
    assert r.status_code == 200, r.text
    first, second = r.json()["predictions"]
    assert first["warnings"] == []
    assert len(second["warnings"]) == 1 and names[2] in second["warnings"][0]


def _bad_inputs(n: int) -> list:
    ok = [0.5] * n
    return [
        ("nan literal", '{"model": "demo", "inputs": [[NaN' + ", 1" * (n - 1) + "]]}", 422, "non_finite"),
        (
            "infinity literal",
            '{"model": "demo", "inputs": [[-Infinity' + ", 1" * (n - 1) + "]]}",
            422,
            "non_finite",
        ),
        (
            "float64 overflow",
            '{"model": "demo", "inputs": [[1e400' + ", 1" * (n - 1) + "]]}",
            422,
            "value_overflow",
        ),
        ("float32 overflow", {"model": "demo", "inputs": [[1e39] + ok[1:]]}, 422, "value_overflow"),
        (
            "huge integer",
            '{"model": "demo", "inputs": [[' + "9" * 400 + ", 1" * (n - 1) + "]]}",
            422,
            "value_overflow",
        ),
        ("string", {"model": "demo", "inputs": [["1.0"] + ok[1:]]}, 422, "not_a_number"),
        ("boolean", {"model": "demo", "inputs": [[True] + ok[1:]]}, 422, "not_a_number"),
        ("null", {"model": "demo", "inputs": [[None] + ok[1:]]}, 422, "not_a_number"),
        ("ragged", {"model": "demo", "inputs": [ok, ok[:-1]]}, 422, "feature_count"),
        ("wrong count", {"model": "demo", "inputs": [ok + [1.0]]}, 422, "feature_count"),
        ("wrong names", {"model": "demo", "inputs": [{"nope": 1.0}]}, 422, "feature_names"),
        ("mixed rows", {"model": "demo", "inputs": [ok, {"a": 1}]}, 422, "ragged_rows"),
        ("flat row", {"model": "demo", "inputs": [1.0, 2.0]}, 422, "flat_row"),
        ("row not a list", {"model": "demo", "inputs": [ok, "x"]}, 422, "ragged_rows"),
        ("empty batch", {"model": "demo", "inputs": []}, 422, "empty_batch"),
        ("oversized batch", {"model": "demo", "inputs": [ok] * 1025}, 413, "batch_too_large"),
        ("inputs not a list", {"model": "demo", "inputs": "x"}, 422, "invalid_input"),
        ("missing inputs", {"model": "demo"}, 422, "bad_body"),
        ("unknown field", {"model": "demo", "input": [ok]}, 422, "bad_body"),
        ("body not object", [ok], 422, "bad_body"),
        ("not json", "{model: demo", 422, "invalid_json"),
        ("not utf-8", b"\xff\xfe{}", 422, "invalid_input"),
        ("many brackets", "[" * 100_000 + "]" * 100_000, 422, "too_many_values"),
        ("deep nesting", "[" * 40 + "]" * 40, 422, "too_deep"),
        ("explain not bool", {"model": "demo", "inputs": [ok], "explain": "yes"}, 422, "bad_body"),
        ("unknown model", {"model": "nope", "inputs": [ok]}, 404, "unknown_model"),
        ("unknown version", {"model": "demo", "version": 7, "inputs": [ok]}, 404, "unknown_version"),
        ("bad version", {"model": "demo", "version": "1", "inputs": [ok]}, 422, "bad_body"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_inputs(2))))
def test_bad_input_gets_a_clear_json_4xx(canary, rows, case):
    name, body, status, code = _bad_inputs(len(rows[0]))[case]
    r = post(canary, body)
    assert r.status_code == status, (name, r.text)
    error = strict_json(r.text)["error"]
    assert error["code"] == code, (name, error)
    assert error["message"] and error["fix"], name


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Content-Type": "multipart/form-data"}, 415),  # no boundary: BentoML alone answers 500
        ({"Content-Type": "text/plain"}, 415),
        ({}, 415),
    ],
)
def test_transport_errors_are_json(canary, rows, headers, status):
    body = json.dumps({"model": "demo", "inputs": rows}).encode()
    r = httpx.post(canary.url + "/predict", content=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    assert strict_json(r.text)["error"]["fix"]


def test_declared_oversized_body_is_refused_before_reading(canary):
    host, port = canary.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n{"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):  # headers and body may
            chunk = s.recv(65536)  # arrive in separate segments
            if not chunk:
                break
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.1 413") and "body_too_large" in text, text


def test_streamed_oversized_body_is_refused(canary):
    def chunks():
        yield b'{"model": "demo", "inputs": ['
        for _ in range(8000):
            yield b"[" + b"1.0," * 200 + b"1.0],"

    r = httpx.post(
        canary.url + "/predict", content=chunks(), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_server_stays_healthy_after_bad_requests(canary, rows):
    for body in ("[" * 50_000, '{"model": "demo", "inputs": [[NaN]]}', b"\x00\x01"):
        post(canary, body)
    assert httpx.get(canary.url + "/healthz").status_code == 200
    assert post(canary, {"model": "demo", "inputs": rows[:1]}).status_code == 200


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_known_traffic(canary, rows):
    before = httpx.get(canary.url + "/metrics").text
    for _ in range(3):
        assert post(canary, {"model": "demo", "inputs": rows[:2]}).status_code == 200
    assert post(canary, {"model": "demo", "inputs": []}).status_code == 422
    assert post(canary, {"model": "ghost", "inputs": rows[:1]}).status_code == 404
    after = httpx.get(canary.url + "/metrics").text

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    ok = {"model": "demo", "version": "1", "consumer": "canary", "outcome": "ok"}
    assert delta("lockgate_requests_total", **ok) == 3
    assert delta("lockgate_requests_total", model="demo", outcome="invalid_input") == 1
    assert delta("lockgate_requests_total", model="unknown", outcome="not_found") == 1
    assert delta("lockgate_request_latency_seconds_count", model="demo", version="1") == 3
    assert delta("lockgate_batch_rows_sum", model="demo") == 6
    assert delta("lockgate_predicted_probability_count", model="demo") == 6 * 2  # 6 rows x 2 classes
    assert _sample(after, "lockgate_model_info", model="demo", version="1") == 1
    # label sets stay bounded: no request-supplied value ever becomes a label
    assert "ghost" not in after


def test_models_readyz_openapi(canary, demo_bundle):
    models = httpx.get(canary.url + "/models").json()
    assert [m["name"] for m in models["models"]] == ["demo"] and models["canary"] is True
    detail = httpx.get(canary.url + "/models/demo").json()
    assert detail["card"]["ref"] == {"name": "demo", "version": 1}
    assert detail["versions"] == [{"version": 1, "status": "canary", "released_at": None}]
    assert len(detail["inputs"]["features"]) == detail["card"]["dataset"]["n_features"]
    assert httpx.get(canary.url + "/models/nope").status_code == 404
    ready = httpx.get(canary.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["serving"] == ["demo:1"]
    spec = httpx.get(canary.url + "/openapi.json").json()
    assert "/predict" in spec["paths"] and "PredictAnswer" in spec["components"]["schemas"]


def test_open_inference_protocol_with_tritonclient(canary, rows):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=canary.url.removeprefix("http://"))
    try:
        assert client.is_server_ready() and client.is_model_ready("demo")
        meta = client.get_model_metadata("demo")
        assert meta["inputs"][0]["shape"] == [-1, len(rows[0])]
        x = np.array(rows, dtype=np.float32)
        expected = post(canary, {"model": "demo", "inputs": rows}).json()["predictions"]
        for binary in (False, True):
            tensor = triton.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            result = client.infer("demo", [tensor])
            probs = result.as_numpy("probabilities")
            assert probs.shape == (len(rows), 2)
            assert np.allclose(
                probs[:, 1], [list(p["probabilities"].values())[1] for p in expected], atol=1e-6
            )
        bad = triton.InferInput("input", [1, len(rows[0]) + 1], "FP32")
        bad.set_data_from_numpy(np.zeros((1, len(rows[0]) + 1), dtype=np.float32), binary_data=False)
        with pytest.raises(triton.InferenceServerException, match="shape"):
            client.infer("demo", [bad])
        with pytest.raises(triton.InferenceServerException):
            client.get_model_metadata("nope")
    finally:
        client.close()


def test_cli_refuses_unusable_bundle_and_taken_port(tmp_path, canary, demo_bundle):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lockgate.cli", "serve", *args], capture_output=True, text=True, timeout=60
        )

    missing = run("--canary", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    empty = run("--canary", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "card.json" in empty.stderr
    port = re.search(r":(\d+)$", canary.url).group(1)
    taken = run("--canary", str(demo_bundle), "--port", port)
    assert taken.returncode == 2 and "pick another --port" in taken.stderr
