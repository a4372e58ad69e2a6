"""Fixtures: small real bundles (``training.train``) with gate reports, and real gateway processes
(``lockgate serve``) on free ports, always stopped in teardown."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cascade_registry.artifacts import ModelBundle
from tests.bundles import gate_bundle, open_trusting, train_bundle, write_attestation

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A real ``lockgate serve`` process group; always stopped by the fixture that made it."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None, cwd: Path = ROOT
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lockgate.cli", "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0, path: str = "/healthz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gateway not ready after {timeout}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log and self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._out is not subprocess.DEVNULL:
            self._out.close()


@contextlib.contextmanager
def released_gateway(
    work: Path, bundles: list[Path], consumer: str = "shop"
) -> Iterator[tuple[Gateway, str]]:
    """``bundles`` registered and released in a SQLite registry under ``work``, each declared for one
    consumer, behind a real gateway (stopped on exit); yields (gateway, the consumer's key)."""
    url = f"sqlite:///{work / 'registry.db'}"
    with open_trusting(url) as reg:
        reg.add_consumer(consumer, owner=f"team-{consumer}")
        for bundle in bundles:
            ref = reg.register(bundle).ref
            reg.release(str(ref))
            reg.declare(consumer, ref.name)
        key = reg.issue_key(consumer)
    gw = Gateway(["--registry-url", url], log=work / "gateway.log")
    try:
        gw.wait_ready(path="/readyz")
        yield gw, key
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles")


def write_gate(bundle: Path, passed: bool = True, sha256: str | None = None) -> None:
    """A signed gate verdict as ``lockgate check`` writes it (by the session's test key); bound to
    model.onnx unless ``sha256`` is given."""
    loaded = ModelBundle.load(bundle)
    write_attestation(bundle, loaded.ref, passed, model_sha256=sha256)


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _train(out: Path, version: int, seed: int) -> Path:
    bundle = train_bundle(out, version=version, seed=seed, trials=1)
    gate_bundle(bundle)  # the real gate writes the passing gate.json
    return bundle


@pytest.fixture(scope="session")
def demo_bundle(bundle_root: Path) -> Path:
    """demo:1, breast_cancer logistic regression with sigmoid calibration and a passing gate report."""
    return _train(bundle_root, 1, 0)


@pytest.fixture(scope="session")
def demo_bundle_v2(bundle_root: Path) -> Path:
    return _train(bundle_root, 2, 1)


@pytest.fixture(scope="session")
def rows(demo_bundle: Path) -> list[list[float]]:
    import numpy as np

    return np.load(demo_bundle / "reference.npz")["inputs"][:8].astype(float).tolist()


@pytest.fixture(scope="session")
def canary(demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(["--canary", str(demo_bundle)], log=tmp_path_factory.mktemp("gw") / "canary.log")
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def gate_writer():
    return write_gate


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator:
    """``start_gateway(*args, env=...)`` -> a ready :class:`Gateway`; every one is stopped afterwards."""
    started: list[Gateway] = []

    def start(
        *args: str, env: dict[str, str] | None = None, ready_path: str = "/healthz", cwd: Path = ROOT
    ) -> Gateway:
        gw = Gateway(list(args), env=env, log=tmp_path / f"gateway-{len(started)}.log", cwd=cwd)
        started.append(gw)
        gw.wait_ready(path=ready_path)
        return gw

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()
