"""``python -m loadtests.demo loadtest|stepload|soak [loadtest options]``: the Makefile's entry.

Uses the gateway at ``--host`` (default http://127.0.0.1:3000) when one is running there: then the
default registry is read and its declared consumers' keys are rotated to obtain keys (demo only).
Otherwise it builds a demo world under ``.lockgate/loadtest-demo/`` — trains the demo bundle
(``lockgate train``), gates it (``lockgate check``), registers and releases it in a SQLite registry,
adds consumers ``web`` (weight 3), ``batch`` (weight 1) and ``intruder`` (declared for nothing) with
fresh keys — starts ``lockgate serve`` on the host's port, runs the load test, and stops the gateway.

Exit code: the load test's (0 objectives held / capacity found, 1 broken, 2 usage or harness error).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from cascade_registry import Registry, RegistryError
from cascade_registry.artifacts import GATE_FILE, ModelBundle
from cascade_registry.attestation import (
    AttestationError,
    generate_private_key,
    private_key_pem,
    public_key_pem,
    read_envelope,
)
from loadtests.errors import LoadtestError
from loadtests.gateway import is_ready
from loadtests.reports import write_text_atomic

__all__ = ["MODES", "main"]

PROG = "python -m loadtests.demo"
WORKSPACE = Path(".lockgate/loadtest-demo")
CONSUMERS = {"web": 3, "batch": 1, "intruder": 0}
MODES: dict[str, list[str]] = {
    "loadtest": ["--duration", "20s", "--users", "8", "--spawn-rate", "8"],
    "stepload": ["--step", "--step-users", "8", "--step-duration", "10s", "--max-users", "240"],
    "soak": ["--soak", "--duration", "10m", "--users", "8", "--memory-interval", "10s"],
}


def _lockgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockgate.cli", *args]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise LoadtestError(f"{what} failed (exit {proc.returncode}): {tail[0]}")


def _bundle(workspace: Path) -> Path:
    bundle = workspace / "bundles" / "demo-1"
    if not (bundle / "card.json").is_file():
        _run(
            _lockgate(
                "train",
                "--data",
                "breast_cancer",
                "--model",
                "logistic_regression",
                "--calibration",
                "sigmoid",
                "--trials",
                "4",
                "--name",
                "demo",
                "--version",
                "1",
                "--out",
                str(bundle.parent),
                "--overwrite",
                "--quiet",
            ),
            "training the demo model",
        )
    loaded = ModelBundle.load(bundle)
    report = loaded.gate_report()
    if report is None or not report.binds(loaded.onnx_sha256) or not _signed(bundle):
        key = _gate_key(bundle.parent)
        _run(_lockgate("check", str(bundle), "--quiet", "--sign-key", str(key)), "the safety gate")
    if not (bundle / GATE_FILE).is_file():
        raise LoadtestError(f"{bundle} has no {GATE_FILE} after 'lockgate check'")
    return bundle


def _signed(bundle: Path) -> bool:
    try:
        return bool(read_envelope(bundle / GATE_FILE).signatures)
    except AttestationError:
        return False


def _gate_key(workspace: Path) -> Path:
    """The workspace's own gate signing key (made once; the demo registry trusts it)."""
    path = workspace / "gate-key"
    if not path.exists():
        key = generate_private_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_pem(key))
        Path(f"{path}.pub").write_text(public_key_pem(key))
    return path


def _registry(workspace: Path, bundle: Path) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{(workspace / 'registry.db').resolve()}"
    public = Path(f"{_gate_key(bundle.parent)}.pub").read_text()
    with Registry.open(url) as reg:
        if public not in {k.public_key for k in reg.trusted_keys()}:
            reg.trust_key(public, label="loadtest-demo gate", actor="loadtest-demo")
        if not any(v.ref.name == "demo" for v in reg.versions()):
            reg.register(bundle, actor="loadtest-demo")
        if not any(v.ref.name == "demo" for v in reg.released()):
            reg.release("demo:1", actor="loadtest-demo")
        known = {c.name for c in reg.consumers()}
        keys = {}
        for name, weight in CONSUMERS.items():
            if name not in known:
                reg.add_consumer(name, kind="service", owner="loadtest-demo", actor="loadtest-demo")
            if weight > 0 and not reg.check_consumer(name, "demo").allowed:
                reg.declare(name, "demo", actor="loadtest-demo")
            active = [k for k in reg.keys(name) if k.revoked_at is None]
            renew = reg.rotate_key if active else reg.issue_key
            keys[name] = renew(name, actor="loadtest-demo")
    return url, keys


def _traffic(workspace: Path, keys: dict[str, str]) -> Path:
    path = workspace / "traffic.toml"
    text = "# written by python -m loadtests.demo; keys are rotated on every run\n"
    for name, weight in CONSUMERS.items():
        text += f'\n[consumers.{name}]\nkey = "{keys[name]}"\nweight = {weight}\n'
    write_text_atomic(path, text)
    path.chmod(0o600)
    return path


class _Gateway:
    def __init__(self, url: str, port: int, log: Path) -> None:
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            _lockgate("serve", "--registry-url", url, "--port", str(port)),
            # the load test compares Prometheus counts per consumer name with what Locust sent
            env={**os.environ, "LOCKGATE_SERVE_METRICS_CONSUMER_NAMES": "true"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, host: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not is_ready(host):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LoadtestError(
                    f"the demo gateway did not become ready at {host}", f"see {self._log.name}"
                )
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def _host(extra: list[str]) -> str:
    if "--host" in extra and extra.index("--host") + 1 < len(extra):
        return extra[extra.index("--host") + 1].rstrip("/")
    return os.environ.get("LOCKGATE_LOADTEST_HOST", "http://127.0.0.1:3000").rstrip("/")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in MODES:
        print(f"usage: {PROG} {{{'|'.join(MODES)}}} [lockgate loadtest options]", file=sys.stderr)
        return 2
    mode, extra = args[0], args[1:]
    host = _host(extra)
    base = _lockgate("loadtest", *MODES[mode], "--host", host)
    if "--report-dir" not in extra:
        base += ["--report-dir", str(WORKSPACE / f"reports-{mode}")]
    if is_ready(host):
        print(
            f"{PROG}: using the gateway already running at {host} (default registry, keys rotated)",
            file=sys.stderr,
        )
        return subprocess.call([*base, "--use-registry", "--rotate-keys", *extra])
    port = urllib.parse.urlsplit(host).port or 80
    gateway = None
    try:
        workspace = WORKSPACE.resolve()  # absolute: the child processes may change directory
        workspace.mkdir(parents=True, exist_ok=True)
        bundle = _bundle(workspace)
        url, keys = _registry(workspace, bundle)
        traffic = _traffic(workspace, keys)
        print(f"{PROG}: starting the demo gateway on {host}", file=sys.stderr)
        gateway = _Gateway(url, port, workspace / "gateway.log")
        gateway.wait_ready(host)
        return subprocess.call([*base, "--traffic", str(traffic), "--registry-url", url, *extra])
    except (LoadtestError, RegistryError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if gateway is not None:
            gateway.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
