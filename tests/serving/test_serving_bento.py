"""``bentoml build`` packages the gateway from bentofile.yaml (no Docker), and the Bento serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_bentoml_build_packages_the_gateway_and_the_bento_serves(tmp_path: Path, demo_bundle: Path, rows):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    bentoml = [sys.executable, "-m", "bentoml"]
    build = subprocess.run(
        [*bentoml, "build", str(ROOT), "-o", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    tag = build.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    bento = tmp_path / "bentoml" / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "serving.service:Gateway" and name == "lockgate-gateway"
    files = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*.py")}
    assert {"serving/service.py", "serving/predictor.py", "cascade_registry/artifacts.py"} <= files
    assert not any(f.startswith(("training/", "safety/", "tests/")) for f in files)
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert (
        "onnxruntime" in requirements and "torch" not in requirements and "scikit-learn" not in requirements
    )

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*bentoml, "serve", str(bento), "--port", str(port), "--host", "127.0.0.1"],
        env={**env, "LOCKGATE_SERVE_CANARY": str(demo_bundle)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/predict", json={"model": "demo", "inputs": rows}, timeout=2
                )
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, answer and answer.text
        assert answer.json()["model"]["name"] == "demo"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
