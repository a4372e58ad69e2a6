"""``--serve`` (issue check 10): the real serving stack on this bundle answers 2xx or a clear 4xx only.

Starts ``lockgate serve --canary BUNDLE --port P`` (no registry, no auth) on a free localhost port in its
own process group, waits for ``/readyz``, sends canary requests (which must get 200 with valid
probabilities) and bad requests (which must get a 4xx with a JSON ``error`` body, or a valid 200), then
checks the server is still healthy, and always stops it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from cascade_registry.artifacts import CheckResult, ModelCard
from safety.checks.base import outcome
from safety.checks.kind_inputs import kind_probes
from safety.context import GateContext
from safety.policy import GatePolicy

__all__ = ["ServeCheck", "serve_probes"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raw(model: str, token: str, n: int) -> str:
    """A body standard JSON cannot carry (``NaN``, ``1e999`` = infinity), written by hand."""
    return '{"model": ' + json.dumps(model) + ', "inputs": [[' + ", ".join([token] * n) + "]]}"


def instances_of(card: ModelCard, X: Any, C: Any) -> list[dict[str, Any]]:
    """Named-column instances (the contract's request shape for mixed-type models); NaN / "" -> null."""
    out = []
    for i in range(len(X)):
        nums = iter(float(v) for v in X[i])
        cats = iter(str(v) for v in C[i])
        row: dict[str, Any] = {}
        for f in card.features:
            value: Any = next(nums) if f.kind == "numeric" else next(cats)
            if f.kind == "boolean" and value in ("true", "false"):
                value = value == "true"
            row[f.name] = None if value == "" or (isinstance(value, float) and math.isnan(value)) else value
        out.append(row)
    return out


def table_probes(card: ModelCard, instances: list[dict[str, Any]]) -> list[tuple[str, str, Any, str]]:
    """The probes of a mixed-type model: named-column instances (see TABLES_CONTRACT.md)."""
    name, json_type = card.ref.name, "application/json"
    first = instances[0]
    cat = next(f for f in card.features if f.kind == "categorical") if any(
        f.kind == "categorical" for f in card.features) else None
    num = next((f for f in card.features if f.kind == "numeric"), None)
    probes: list[tuple[str, str, Any, str]] = [
        ("canary_instances", "canary", {"model": name, "instances": instances}, json_type),
        ("all_null", "bad", {"model": name, "instances": [dict.fromkeys(first)]}, json_type),
        ("extra_column", "bad", {"model": name, "instances": [first | {"__no_such_column__": 1}]}, json_type),
        ("missing_column", "bad", {"model": name, "instances": [dict(list(first.items())[1:])]}, json_type),
        ("positional_rows", "bad", {"model": name, "inputs": [[0.0] * len(card.features)]}, json_type),
        ("empty_batch", "bad", {"model": name, "instances": []}, json_type),
        ("malformed_json", "bad", '{"model": ', json_type),
        ("non_utf8", "bad", b'{"model": "' + name.encode() + b'", "instances": [{"a": "\xff"}]}', json_type),
    ]
    if cat is not None:
        probes += [
            (probe, "bad", {"model": name, "instances": [first | {cat.name: value}]}, json_type)
            for probe, value in (("unseen_level", "__unseen__"), ("long_string", "x" * 100_000),
                                 ("number_in_categorical", 3.5))
        ]
    if num is not None:
        probes.append(("string_in_numeric", "bad", {"model": name, "instances": [first | {num.name: "x"}]},
                       json_type))
    return probes


def serve_probes(card: ModelCard, rows: list[list[float]]) -> list[tuple[str, str, Any, str]]:
    """(name, kind, body, content type) per request; kind is 'canary' (must be 200) or 'bad' (2xx or 4xx)."""
    name, n = card.ref.name, len(card.features)
    big = card.input_policy.max_batch_rows + 1
    json_type = "application/json"
    as_objects = [dict(zip(card.feature_names, row, strict=True)) for row in rows[:2]]
    far = [[f.max + 1000 * (f.max - f.min + 1) for f in card.features]]
    return [
        ("canary_rows", "canary", {"model": name, "inputs": rows}, json_type),
        ("canary_objects", "canary", {"model": name, "inputs": as_objects}, json_type),
        (
            "canary_version",
            "canary",
            {"model": name, "version": card.ref.version, "inputs": rows[:1]},
            json_type,
        ),
        ("far_out_of_range", "bad", {"model": name, "inputs": far}, json_type),
        ("huge_values", "bad", {"model": name, "inputs": [[1e38] * n, [-1e38] * n]}, json_type),
        (
            "nan_literal",
            "bad",
            _raw(name, "NaN", n),
            json_type,
        ),
        (
            "overflowing_number",
            "bad",
            _raw(name, "1e999", n),
            json_type,
        ),
        ("too_few_features", "bad", {"model": name, "inputs": [rows[0][:-1]]}, json_type),
        ("too_many_features", "bad", {"model": name, "inputs": [rows[0] + [0.0]]}, json_type),
        ("empty_batch", "bad", {"model": name, "inputs": []}, json_type),
        ("strings", "bad", {"model": name, "inputs": [["x"] * n]}, json_type),
        ("nulls", "bad", {"model": name, "inputs": [[None] * n]}, json_type),
        ("batch_too_big", "bad", {"model": name, "inputs": [rows[0]] * big}, json_type),
        ("unknown_model", "bad", {"model": "no-such-model", "inputs": rows[:1]}, json_type),
        ("unknown_version", "bad", {"model": name, "version": 999999, "inputs": rows[:1]}, json_type),
        ("malformed_json", "bad", '{"model": ', json_type),
        ("not_json", "bad", "model=x", "text/plain"),
        ("no_inputs", "bad", {"model": name}, json_type),
    ]


def _valid_answer(body: Any, rows: int, card: ModelCard) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
        return "no 'predictions' list in the answer"
    if len(body["predictions"]) != rows:
        return f"{len(body['predictions'])} predictions for {rows} rows"
    for p in body["predictions"]:
        probs = p.get("probabilities") if isinstance(p, dict) else None
        if (
            not isinstance(probs, dict)
            or set(probs) != set(card.classes)
            or p.get("label") not in card.classes
        ):
            return f"a prediction does not name the card's classes: {str(p)[:120]}"
        values = list(probs.values())
        if not all(isinstance(v, int | float) and math.isfinite(v) and 0 <= v <= 1 for v in values):
            return f"invalid probabilities {values}"
        if abs(sum(values) - 1) > 1e-3:
            return f"probabilities sum to {sum(values):.4f}"
    return None


#: the untrusted model reaches a real server only after every check that ran it in the sandbox passed
SANDBOXED = ("file.checker", "load", "contract", "inputs", "resources", "determinism", "parity", "quality")


def _limit(pid: int, policy: GatePolicy) -> None:
    """The sandbox's memory limit, and a CPU limit covering start-up, on the canary server (its workers,
    forked later, inherit them)."""
    memory = policy.sandbox.memory_mb * 2**20
    cpu = int(max(policy.sandbox.cpu_seconds, policy.serve.startup_seconds + policy.serve.request_seconds))
    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, OSError):
        resource.prlimit(pid, resource.RLIMIT_AS, (memory, memory))
        resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))


class ServeCheck:
    name = "serve"
    requires = SANDBOXED
    description = (
        "with --serve, once every sandboxed check passed: `lockgate serve --canary` (under the sandbox's "
        "memory and CPU limits) answers canary and bad requests with 2xx / clear 4xx"
    )

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        if not ctx.serve:
            return outcome(self, "skip", "not asked (pass --serve)")
        rows = [[float(v) for v in row] for row in ctx.valid_rows(4, seed=5)]
        if ctx.card.categorical_features:
            rows = instances_of(ctx.card, ctx.valid_rows(4), ctx.valid_categorical(4))  # type: ignore[assignment]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory(prefix="lockgate-serve-") as tmp:
            log_path = Path(tmp) / "serve.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "lockgate.cli",
                        "serve",
                        "--canary",
                        str(ctx.bundle.resolve()),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                _limit(proc.pid, policy)
                try:
                    result = self._probe(ctx, policy, proc, base, rows, log_path)
                finally:
                    _stop(proc)
        value = result.value if isinstance(result.value, dict) else {}
        return result.model_copy(update={"value": {**value, "port": port}})

    def _probe(
        self,
        ctx: GateContext,
        policy: GatePolicy,
        proc: subprocess.Popen[bytes],
        base: str,
        rows: list[list[float]],
        log_path: Path,
    ) -> CheckResult:
        card = ctx.card
        timeout = policy.serve.request_seconds
        started = time.monotonic()
        with httpx.Client(timeout=timeout) as client:
            if not _wait_ready(
                client, proc, base, min(policy.serve.startup_seconds, max(ctx.remaining(), 1))
            ):
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                return outcome(
                    self,
                    "fail",
                    f"'lockgate serve --canary' was not ready within "
                    f"{policy.serve.startup_seconds:g} s (serve.startup_seconds); last log line: "
                    f"{tail[0][:200]}",
                )
            startup = round(time.monotonic() - started, 2)
            problems: list[str] = []
            statuses: dict[str, int] = {}
            probes = (table_probes(card, rows) if card.categorical_features
                      else serve_probes(card, rows) + kind_probes(card, rows))
            for name, kind, body, ctype in probes:
                content = body if isinstance(body, str | bytes) else json.dumps(body)
                try:
                    r = client.post(f"{base}/predict", content=content, headers={"Content-Type": ctype})
                except httpx.HTTPError as e:
                    problems.append(f"{name}: no answer ({type(e).__name__}: {e})")
                    continue
                statuses[name] = r.status_code
                problems += _judge(name, kind, body, r, card)
            health = _get(client, f"{base}/healthz")
            if health != 200:
                problems.append(f"/healthz answered {health} after the bad requests")
        value = {
            "startup_s": startup,
            "requests": len(statuses),
            "5xx": sum(s >= 500 for s in statuses.values()),
        }
        if problems:
            more = f" (+{len(problems) - 4} more)" if len(problems) > 4 else ""
            return outcome(self, "fail", "; ".join(problems[:4]) + more, value=value, limit={"5xx": 0})
        codes = ", ".join(f"{k}={v}" for k, v in statuses.items() if v != 200)
        return outcome(self, "pass", f"canary answers 200; refusals: {codes}", value=value, limit={"5xx": 0})


def _judge(name: str, kind: str, body: Any, r: httpx.Response, card: ModelCard) -> list[str]:
    try:
        payload = r.json()
    except ValueError:
        return [f"{name}: {r.status_code} with a non-JSON body"]
    key = "instances" if isinstance(body, dict) and "instances" in body else "inputs"
    rows = len(body[key]) if isinstance(body, dict) and isinstance(body.get(key), list) else 0
    if kind == "canary":
        if r.status_code != 200:
            return [f"{name}: canary request got {r.status_code}: {str(payload)[:160]}"]
        why = _valid_answer(payload, rows, card)
        if why:
            return [f"{name}: {why}"]
        if payload.get("canary") is not True:
            return [f'{name}: the answer is not marked "canary": true']
        return []
    if 200 <= r.status_code < 300:
        why = _valid_answer(payload, rows, card)
        return [f"{name}: 2xx with an invalid answer: {why}"] if why else []
    if 400 <= r.status_code < 500:
        err = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(err, dict) or not err.get("message"):
            return [f"{name}: {r.status_code} without an error message body"]
        return []
    return [f"{name}: {r.status_code} (only 2xx or a clear 4xx is acceptable): {str(payload)[:160]}"]


def _get(client: httpx.Client, url: str) -> int:
    try:
        return client.get(url).status_code
    except httpx.HTTPError:
        return 0


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], base: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _get(client, f"{base}/readyz") == 200:
            return True
        time.sleep(0.25)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers the server left behind
