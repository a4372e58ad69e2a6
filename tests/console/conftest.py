"""A small real registry for the console: bundles with a reliability diagram and signed verdicts, a
service consumer with a key, and an operator and a viewer, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from cascade_registry import Registry  # noqa: E402
from cascade_registry.artifacts import (  # noqa: E402
    CARD_FILE,
    MODEL_FILE,
    RELIABILITY_FILE,
    ModelRef,
    UpstreamRef,
    sha256_file,
    write_json_atomic,
)
from console import ConsoleSettings, create_app  # noqa: E402
from tests.bundles import open_trusting, write_attestation  # noqa: E402
from tests.cascade_registry.conftest import (  # noqa: E402,F401 - the two-backend fixtures
    fresh_registry_url,
    make_card,
    pg_server,
    pg_url,
    write_onnx,
)

PASSWORD = "correct horse battery"


def ensure_debian(binary: str, *packages: str) -> None:
    """Install Debian ``packages`` with apt-get when ``binary`` is missing (as .ci/run does)."""
    if shutil.which(binary) or Path(binary).exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{binary} is missing: apt-get install -y {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=900)


def _reliability_png(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot([0.1, 0.5, 0.9], [0.15, 0.45, 0.88], marker="o")
    ax.set_title("reliability")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    path.write_bytes(buf.getvalue())


def make_bundle(
    root: Path, name: str, version: int, passed: bool = True, upstream: tuple[str, ...] = ()
) -> Path:
    ref = ModelRef(name=name, version=version)
    bundle = root / ref.dirname
    bundle.mkdir(parents=True)
    write_onnx(bundle / MODEL_FILE, int.from_bytes(hashlib.sha256(str(bundle).encode()).digest()[:4], "big"))
    ups = [UpstreamRef(name=u.split(":")[0], version=int(u.split(":")[1])) for u in upstream]
    write_json_atomic(bundle / CARD_FILE, make_card(ref, sha256_file(bundle / MODEL_FILE), ups))
    _reliability_png(bundle / RELIABILITY_FILE)
    write_attestation(bundle, ref, passed=passed)
    return bundle


@dataclass
class World:
    url: str
    key_id: str
    bundles: Path

    def register_stale_candidate(self) -> None:
        """scorer:2, trained on churn:1: stale once churn:2 is released, so its release needs a waiver by
        the scorer's owner (alice)."""
        with registry(self.url) as reg:
            reg.register(make_bundle(self.bundles, "scorer", 2, True, ("churn:1",)), actor="tests")


@pytest.fixture
def world(fresh_registry_url: str, tmp_path: Path) -> World:  # noqa: F811 - the imported fixture
    """churn:1 released, churn:2 gated (a release candidate), bad:1 failed its gate, service 'web' with a
    key and a declaration, 'scorer:1' trained on churn:1; users alice (operator) and bob (viewer)."""
    root = tmp_path / "bundles"
    with open_trusting(fresh_registry_url) as reg:
        for name, version, passed, ups in [
            ("churn", 1, True, ()),
            ("churn", 2, True, ()),
            ("bad", 1, False, ()),
            ("scorer", 1, True, ("churn:1",)),
        ]:
            owner = "alice" if name == "scorer" else None  # alice may waive for the scorer
            reg.register(make_bundle(root, name, version, passed, ups), actor="tests", owner=owner)
        reg.release("churn:1", actor="tests")
        reg.release("scorer:1", actor="tests")
        reg.add_consumer("web", kind="service", owner="team-web", actor="tests")
        reg.issue_key("web", actor="tests")
        reg.declare("web", "churn", ">=1", actor="tests")
        reg.add_console_user("alice", PASSWORD, role="operator", actor="tests")
        reg.add_console_user("bob", PASSWORD, role="viewer", actor="tests")
        key_id = reg.keys("web")[0].key_id
    return World(fresh_registry_url, key_id, root)


def settings_for(url: str, **kw) -> ConsoleSettings:
    return ConsoleSettings(registry_url=url, actions=True, secret="tests-secret", **kw)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    app = create_app(settings_for(world.url))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.console.close()


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def login(client: TestClient, name: str = "alice", password: str = PASSWORD) -> str:
    """Log in; return the new session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert r.status_code == 200, r.text  # followed the 303 to the models page
    return csrf_of(client.get("/").text)


def registry(url: str) -> Registry:
    return Registry.open(url)
