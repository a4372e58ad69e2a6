"""The cascade scenario of ``benchmarks/serving.py --cascade`` (issue 13): a composed model vs two calls.

Models (the generated cascade tables of ``training.synthetic``, trained with ``lockgate train``, logistic
regression, gated with ``safety.run_gate``, released in one SQLite registry, served by one gateway):

- ``a``      ``risky`` from g1..g4 and the categorical ``region``;
- ``b``      ``default`` from g1..g4, region, h1, h2 and ``a__p_yes`` (``train --upstream a:1``), composed
  in the gateway on its pin a:1;
- ``bflat``  the same model trained with ``a__p_yes`` as an ordinary column (no cascade fields).

Scenarios, one row per operation, at c=1 and c=16 (c keep-alive connections, each running operations
back to back):

- ``composed``   one ``POST /predict`` to ``b`` with the raw columns: the gateway runs a:1 then b;
- ``two calls``  the consumer calls ``a``, reads P(yes) from the answer, then calls ``bflat`` with the
  raw columns plus ``a__p_yes`` (what a consumer does without composition).

The load generator is a small asyncio HTTP/1.1 client (one ``write`` and a content-length read per
request; ~20-40 us of client CPU per request, so it stays well below the gateway's cost). Figures:
operations/s and the p50/p99 latency of a whole operation, median of the rounds (scenarios alternate
within each round, so background load hits both alike).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure_cascade", "prepare_cascade", "report_cascade"]


def prepare_cascade(work: Path, registry_url: str) -> dict[str, Any]:
    """Train (``lockgate train``; b with ``--upstream a:1``), gate, register and release a, b and bflat;
    one consumer declared for all three. Returns its key and the bodies."""
    import pandas as pd

    from cascade_registry import Registry
    from cascade_registry.artifacts import ModelBundle
    from cascade_registry.attestation import generate_private_key, public_key_pem
    from safety import GatePolicy, run_gate
    from tests.cascades import Cascade
    from training.synthetic import A_INPUTS, write_cascade_tables
    from training.upstream import run_graph

    key = generate_private_key()
    c = Cascade(work / "cascade", registry_url, write_cascade_tables(work / "cascade" / "data", rows=500))
    lr = ("--model", "logistic_regression")

    def publish(name: str) -> Path:
        bundle = c.bundle(name)
        if not run_gate(bundle, GatePolicy(), sign_key=key).passed:
            raise SystemExit(f"{name} failed its gate")
        with Registry.open(registry_url) as reg:
            reg.register(bundle)
            reg.release(f"{name}:1")
            reg.declare("cascade-client", name)
        return bundle

    with Registry.open(registry_url) as reg:
        reg.trust_key(public_key_pem(key), label="benchmark-cascade")
        reg.add_consumer("cascade-client", owner="benchmarks")
        api_key = reg.issue_key("cascade-client")
    c.train_a(*lr)
    a = ModelBundle.load(publish("a"))
    c.train_b(*lr, "--upstream", "a:1")
    fed = ModelBundle.load(publish("b")).card.upstream[0].features[0]
    frame = pd.read_csv(c.tables["b"])
    columns = {name: frame[name].to_numpy() for name in frame}
    frame[fed] = run_graph(a.model_path.read_bytes(), a.card, columns)[1][:, 1].astype(np.float32)
    flat = work / "cascade" / "flat.csv"
    frame.to_csv(flat, index=False)
    c.train("--data", str(flat), "--target", "default", "--name", "bflat", "--seed", "1", *lr)
    publish("bflat")
    row = frame.drop(columns=["default", fed]).iloc[:1].to_dict(orient="records")[0]
    return {
        "key": api_key,
        "fed": fed,
        "positive": a.card.classes[1],
        "b": json.dumps({"model": "b", "instances": [row]}).encode(),
        "a": json.dumps({"model": "a", "instances": [{k: row[k] for k in A_INPUTS}]}).encode(),
        "flat_row": row,
    }


class _Connection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read the answer by its content-length."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: "
        ).encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes) -> bytes:
        self.writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answer {head[:40]!r}")
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _composed(conn: _Connection, bodies: dict[str, Any]) -> None:
    await conn.post(bodies["b"])


async def _two_calls(conn: _Connection, bodies: dict[str, Any]) -> None:
    answer = json.loads(await conn.post(bodies["a"]))
    p = answer["predictions"][0]["probabilities"][bodies["positive"]]
    row = {**bodies["flat_row"], bodies["fed"]: p}
    await conn.post(json.dumps({"model": "bflat", "instances": [row]}).encode())


SCENARIOS = {"composed": _composed, "two calls": _two_calls}


async def _run(
    port: int, bodies: dict[str, Any], op: Any, connections: int, seconds: float
) -> dict[str, float]:
    conns = [_Connection("127.0.0.1", port, bodies["key"]) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(conn: _Connection) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await op(conn, bodies)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - began
    for c in conns:
        c.close()
    ms = np.array(latencies) * 1e3
    return {
        "ops": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
    }


def measure_cascade(
    port: int, bodies: dict[str, Any], rounds: int, seconds: float
) -> dict[tuple[str, int], dict]:
    """(scenario, connections) -> median ops/s, p50 and p99 ms over the rounds (and the ops/s range)."""
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for connections in (1, 16):
        for op in SCENARIOS.values():
            asyncio.run(_run(port, bodies, op, connections, 0.5))  # warm-up
        for turn in range(rounds):
            order = list(SCENARIOS.items())[:: 1 if turn % 2 == 0 else -1]
            for name, op in order:
                runs.setdefault((name, connections), []).append(
                    asyncio.run(_run(port, bodies, op, connections, seconds))
                )
    return {
        key: {
            **{k: float(np.median([r[k] for r in rs])) for k in ("ops", "p50", "p99")},
            "range": (min(r["ops"] for r in rs), max(r["ops"] for r in rs)),
        }
        for key, rs in runs.items()
    }


def report_cascade(results: dict[tuple[str, int], dict], rounds: int, seconds: float) -> None:
    print(
        f"\ncascade: a -> b composed in the gateway vs the consumer calling a then bflat; median of {rounds} "
        f"rounds of {seconds:g}s, one row per operation"
    )
    print(f"{'scenario':<11} {'c':>3} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}  ops/s range")
    for (name, c), r in results.items():
        low, high = r["range"]
        print(f"{name:<11} {c:>3} {r['ops']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}  {low:.0f}-{high:.0f}")
    for c in (1, 16):
        comp, two = results[("composed", c)], results[("two calls", c)]
        ratio = comp["ops"] / two["ops"]
        print(
            f"  c={c}: composed/two calls ops/s {ratio:.2f} (target > 1: {'PASS' if ratio > 1 else 'MISS'}), "
            f"p99 {comp['p99']:.2f} vs {two['p99']:.2f} ms"
        )
