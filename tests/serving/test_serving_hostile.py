"""Issue 12 against a real gateway: hostile callers, keyless reads, bad bundles, a registry outage.

Each test reproduces one finding of the issue (on the code before the fix it fails).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from cascade_registry import Registry
from cascade_registry.artifacts import ModelRef
from tests.bundles import open_trusting, train_bundle, write_attestation
from tests.serving.conftest import Gateway
from tests.serving.test_serving_registry import predict, wait_for

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _open_registry(root: Path, demo_bundle: Path) -> tuple[str, Registry, dict[str, str]]:
    """A SQLite registry in ``root``: demo:1 released, 'billing' declared for it, 'intruder' not."""
    url = f"sqlite:///{root / 'registry.db'}"
    reg = open_trusting(url)
    reg.register(shutil.copytree(demo_bundle, root / "bundles" / "demo-1"))
    reg.release("demo:1")
    reg.add_consumer("billing", owner="team-billing")
    reg.add_consumer("intruder", owner="someone")
    reg.declare("billing", "demo")
    return url, reg, {"billing": reg.issue_key("billing"), "intruder": reg.issue_key("intruder")}


@pytest.fixture
def registry(tmp_path: Path, demo_bundle: Path):
    """A registry of its own, for a test that changes it (or starts a gateway with other settings)."""
    url, reg, keys = _open_registry(tmp_path, demo_bundle)
    try:
        yield url, reg, keys
    finally:
        reg.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_bundle: Path):
    """ONE gateway on one registry for the tests that only call it (none changes the registry):
    ``(gateway, keys, root)``."""
    root = tmp_path_factory.mktemp("served")
    url, reg, keys = _open_registry(root, demo_bundle)
    reg.close()
    gw = Gateway(["--registry-url", url], log=root / "gateway.log")
    try:
        gw.wait_ready(path="/readyz")
        yield gw, keys, root
    finally:
        gw.stop()


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in the gateway's process group (CLI, BentoML arbiter, worker)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of /proc/PID/stat: the process group
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _send_all(url: str, body: bytes, headers: dict[str, str], n: int) -> list[int]:
    statuses = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            try:
                statuses.append(client.post(url, content=body, headers=headers).status_code)
            except httpx.HTTPError:
                statuses.append(0)  # the gateway answered and closed before the body was sent
    return statuses


# ------------------------------------------------------------------------------------ finding 3
def test_memory_probe_of_deep_bodies_stays_bounded(served):
    """120 requests of 4 MB bodies opening 200,000 brackets, keyless and with a key."""
    gw, keys, _ = served
    body = b"[" * 200_000 + b" " * (4 * 1024 * 1024 - 200_000 - 1024)
    headers = {"Content-Type": "application/json"}
    assert predict(gw, [[0.0] * 30], key=keys["billing"]).status_code == 200  # warm
    before = group_rss(gw.proc.pid)
    keyless = _send_all(gw.url + "/predict", body, headers, 60)
    keyed = _send_all(
        gw.url + "/predict", body, {**headers, "Authorization": f"Bearer {keys['billing']}"}, 60
    )
    time.sleep(0.5)
    growth = group_rss(gw.proc.pid) - before
    assert set(keyless) <= {401, 0} and 401 in keyless, keyless
    assert set(keyed) == {422}, keyed
    assert growth < 80 * 1024 * 1024, f"gateway grew by {growth / 2**20:.0f} MB"
    refused = httpx.post(
        gw.url + "/predict",
        content=body,
        headers={**headers, "Authorization": f"Bearer {keys['billing']}"},
        timeout=30,
    )
    assert refused.json()["error"]["code"] == "too_many_values"
    assert httpx.get(gw.url + "/healthz").status_code == 200


def test_keyless_body_is_never_read(served):
    """A keyless caller gets 401 at once, without the gateway waiting for (or decoding) its body."""
    gw, _, _ = served
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4000000\r\n\r\n[[[["
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.1 401") and "missing_key" in text, text


def test_slow_header_lines_time_out(canary_slow_headers):
    gw = canary_slow_headers
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        reply = b""
        try:
            for i in range(40):  # one header line every 0.25 s: 10 s of headers if never cut
                s.sendall(b"X-Slow-%d: 1\r\n" % i)
                time.sleep(0.25)
        except OSError:
            pass  # the gateway closed the connection
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except OSError:
            pass
        elapsed = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408") and b"header_timeout" in reply, reply
    assert elapsed < 5


def test_open_connections_per_client_are_capped(canary_slow_headers):
    gw = canary_slow_headers  # LOCKGATE_SERVE_MAX_CONNECTIONS_PER_CLIENT=4
    host, port = gw.url.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        with socket.create_connection((host, int(port)), timeout=5) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = extra.recv(65536)
        assert reply.startswith(b"HTTP/1.1 429") and b"too_many_connections" in reply, reply
    finally:
        for s in held:
            s.close()
    wait_for(lambda: httpx.get(gw.url + "/healthz", timeout=2).status_code == 200, what="slots freed")


@pytest.fixture(scope="module")
def canary_slow_headers(tmp_path_factory: pytest.TempPathFactory, demo_bundle: Path):
    """One canary gateway with a 1 s header timeout and 4 connections per client, for the two tests below
    (each leaves no connection open)."""
    gw = Gateway(
        ["--canary", str(demo_bundle)],
        env={"LOCKGATE_SERVE_HEADER_TIMEOUT": "1", "LOCKGATE_SERVE_MAX_CONNECTIONS_PER_CLIENT": "4"},
        log=tmp_path_factory.mktemp("slow-headers") / "gateway.log",
    )
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()


# ------------------------------------------------------------------------------------ finding 4
@pytest.fixture(scope="module")
def other_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two more models with a passing signed verdict (own model.onnx each: the registry registers a file
    once). The verdict is written by hand (``write_attestation``): what is under test is the gateway's
    handling of files broken after the gate, not the gate."""
    out = tmp_path_factory.mktemp("others")
    bundles = {}
    for seed, name in ((2, "nested"), (3, "zero")):
        bundles[name] = train_bundle(out, name=name, seed=seed, trials=1)
        write_attestation(bundles[name], ModelRef(name=name, version=1))
    return bundles


def test_one_bad_bundle_never_stops_start_up_or_reloads(
    registry, start_gateway, other_bundles, demo_bundle_v2, tmp_path
):
    url, reg, keys = registry
    nested = shutil.copytree(other_bundles["nested"], tmp_path / "bundles" / "nested-1")
    zero = shutil.copytree(other_bundles["zero"], tmp_path / "bundles" / "zero-1")
    for bundle, name in ((nested, "nested"), (zero, "zero")):
        reg.register(bundle)
        reg.release(f"{name}:1")
    # after the gate: a card nested 50,000 deep, and a gate report that is a link to /dev/zero
    (nested / "card.json").write_text("[" * 50_000 + "]" * 50_000)
    (zero / "gate.json").unlink()
    (zero / "gate.json").symlink_to("/dev/zero")

    gw = start_gateway("--registry-url", url)
    wait_for(lambda: httpx.get(gw.url + "/readyz").json()["serving"] == ["demo:1"], what="start-up")
    ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 503 and sorted(ready.json()["missing"]) == ["nested:1", "zero:1"]
    assert str(tmp_path) not in ready.text and "/dev/zero" not in ready.text
    # refused by the manifest check (the files are not the ones registered) or, on a bundle without
    # one, by the file guards ("nested too deeply", "not a regular file"); either way named, no path
    assert "card.json" in ready.json()["missing"]["nested:1"]
    assert "gate.json" in ready.json()["missing"]["zero:1"]

    # later releases still load
    reg.register(shutil.copytree(demo_bundle_v2, tmp_path / "bundles" / "demo-2"))
    reg.release("demo:2")
    wait_for(lambda: "demo:2" in httpx.get(gw.url + "/readyz").json()["serving"], what="reload")
    assert predict(gw, [[0.0] * 30], key=keys["billing"]).json()["model"]["version"] == 2
    metrics = httpx.get(gw.url + "/metrics").text
    refusals = [line for line in metrics.splitlines() if line.startswith("lockgate_bundle_refusals")]
    assert any('model="nested"' in line for line in refusals), refusals
    assert any('model="zero"' in line for line in refusals), refusals
    log = gw.tail()
    assert "not serving nested:1" in log and "not serving zero:1" in log  # logged, with paths
    assert "Removal of labels" not in log  # no warning per hot swap


# ------------------------------------------------------------------------------------ finding 5
class TcpProxy:
    """A real TCP forwarder to PostgreSQL that the test can cut (an outage) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        self._listener = None
        for s in self._conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._conns = []


@pytest.fixture
def pg_schema():
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"lgout_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 5})
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.mark.postgres
def test_registry_outage_expires_cached_decisions_and_answers_503(
    pg_schema, start_gateway, demo_bundle, rows, tmp_path
):
    """An uncached key during an outage gets 503 + Retry-After (not 500); cached ones expire."""
    proxy = TcpProxy(("127.0.0.1", 5432))
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{pg_schema}"
    direct = f"{PG_SERVER}?options=-csearch_path%3D{pg_schema}"
    with open_trusting(direct) as reg:
        reg.register(shutil.copytree(demo_bundle, tmp_path / "demo-1"))
        reg.release("demo:1")
        reg.add_consumer("billing", owner="team")
        reg.declare("billing", "demo")
        cached, uncached = reg.issue_key("billing"), reg.issue_key("billing")
    env = {
        "LOCKGATE_SERVE_ACCESS_CACHE_SECONDS": "2",
        "LOCKGATE_SERVE_FAIL_CLOSED_AFTER_POLLS": "3",
        "LOCKGATE_SERVE_POLL_INTERVAL": "0.5",
    }
    try:
        gw = start_gateway("--registry-url", url, env=env, ready_path="/readyz")
        assert predict(gw, rows[:1], key=cached).status_code == 200
        proxy.cut()
        outage = predict(gw, rows[:1], key=uncached)
        assert outage.status_code == 503, outage.text
        assert outage.json()["error"]["code"] == "registry_unavailable"
        assert int(outage.headers["retry-after"]) >= 1
        # the cached decision expires: within a few seconds the known key is refused too (fail closed)
        wait_for(lambda: predict(gw, rows[:1], key=cached).status_code == 503, timeout=8, what="expiry")
        proxy.start()
        wait_for(lambda: predict(gw, rows[:1], key=uncached).status_code == 200, timeout=20, what="recovery")
        assert "Traceback" not in gw.tail()
    finally:
        if proxy._listener is not None:
            proxy.cut()


# ------------------------------------------------------------------------------------ finding 6
def test_keyless_callers_read_little(served):
    gw, keys, root = served
    auth = {"Authorization": f"Bearer {keys['billing']}"}
    detail = httpx.get(gw.url + "/models/demo")
    assert detail.status_code == 401 and detail.json()["error"]["code"] == "missing_key"
    assert (
        httpx.get(
            gw.url + "/models/demo", headers={"Authorization": f"Bearer {keys['intruder']}"}
        ).status_code
        == 403
    )
    assert httpx.get(gw.url + "/v2/models/demo").status_code == 401
    # the model is not resolved before the key: an unknown model is a 401, not a list of served models
    ghost = httpx.post(gw.url + "/predict", json={"model": "ghost", "inputs": [[1.0]]})
    assert ghost.status_code == 401 and "demo" not in ghost.text
    keyed = httpx.get(gw.url + "/models/demo", headers=auth)
    assert keyed.status_code == 200
    card = keyed.json()["card"]
    for private in ("hyperparameters", "search", "infrastructure", "runtime", "cost", "details"):
        assert private not in card, private
    assert "source" not in card["dataset"]
    for path in ("/readyz", "/models", "/models/demo", "/metrics", "/openapi.json", "/models/ghost"):
        text = httpx.get(gw.url + path, headers=auth).text
        assert str(root) not in text and "/tmp/" not in text, path
    assert "billing" not in httpx.get(gw.url + "/metrics").text


def test_details_can_be_made_public_by_the_admin(registry, start_gateway):
    url, _, _ = registry
    gw = start_gateway(
        "--registry-url", url, env={"LOCKGATE_SERVE_PUBLIC_DETAILS": "true"}, ready_path="/readyz"
    )
    assert httpx.get(gw.url + "/models/demo").status_code == 200


# ------------------------------------------------------------------------------------ finding 9
@pytest.mark.parametrize(
    "path",
    [
        "/models/demo?version=%C2%B2",
        "/v2/models/demo/versions/%C2%B2",
        "/v2/models/demo/versions/%C2%B2/ready",
        "/models/demo?version=" + "9" * 5000,
    ],
)
def test_unicode_digit_versions_are_4xx(canary, path):
    r = httpx.get(canary.url + path)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])


def test_unicode_digit_version_on_v2_infer_is_4xx(canary, rows):
    v2 = {"inputs": [{"name": "input", "shape": [1, len(rows[0])], "datatype": "FP32", "data": rows[0]}]}
    r = httpx.post(canary.url + "/v2/models/demo/versions/%C2%B2/infer", json=v2)
    assert r.status_code == 404, r.text


# ------------------------------------------------------------------------------------ issue 18
def test_bare_key_without_bearer_says_add_bearer(served, rows):
    gw, keys, _ = served
    r = httpx.post(
        gw.url + "/predict",
        json={"model": "demo", "inputs": rows},
        headers={"Authorization": keys["billing"]},
    )
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == "bad_auth_scheme" and "Bearer" in error["fix"], error
    assert r.headers["www-authenticate"] == "Bearer"


def test_browser_page_is_lockgates_own_api_without_scripts(canary):
    for path in ("/", "/docs"):
        page = httpx.get(canary.url + path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert (
            "/predict" in page.text
            and "/v2/models/{name}/infer" in page.text
            and "/models/{name}" in page.text
        )
        assert (
            "<script" not in page.text.lower() and "src=" not in page.text and "href='http" not in page.text
        )
    spec = httpx.get(canary.url + "/docs.json").json()
    assert "/predict" in spec["paths"]  # BentoML's own document (health routes only) is not served
    schema = spec["components"]["schemas"]["PredictAnswer"]
    assert schema["properties"]["schema"]["const"] == "lockgate.predict/2"


def test_serve_logs_what_it_serves_and_only_real_changes(registry, start_gateway, demo_bundle_v2, tmp_path):
    url, reg, _ = registry
    gw = start_gateway("--registry-url", url, ready_path="/readyz")
    wait_for(lambda: "serving demo:1 from the registry" in gw.tail(), what="start-up log")
    reg.issue_key("billing")  # an unrelated registry change
    reg.add_consumer("someone-else", owner="x")
    time.sleep(2.5)
    assert "now serving" not in gw.tail() and "registry changed" not in gw.tail()
    reg.register(shutil.copytree(demo_bundle_v2, tmp_path / "bundles" / "demo-2"))
    reg.release("demo:2")
    wait_for(lambda: "now serving demo:2" in gw.tail(), what="swap log")
    assert "Removal of labels" not in gw.tail()


def test_serve_warns_when_it_serves_nothing(start_gateway, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Registry.open(url).close()
    gw = start_gateway("--registry-url", url)
    wait_for(lambda: "serving nothing" in gw.tail(), what="warning")
    assert "lockgate registry release" in gw.tail()
