"""What a shadow or canary rollout costs the live traffic: one gateway, the same run, three states.

demo:1 released (breast_cancer, logistic regression + sigmoid, ``lockgate train``, the real gate);
demo:2 (seed 1) as the candidate. States, switched through the registry (the gateway follows at its
next 0.2 s poll):

- ``off``     no rollout;
- ``shadow``  demo:2 runs after every answer, off the response path, its answer compared;
- ``canary``  demo:2 answers 10 % of the requests (sticky per request id; none is sent: a random draw each).

One row per request, c=1 and c=16 keep-alive connections (the asyncio client of
``benchmarks/cascade_load.py``); the states alternate within each round (order reversed every round) so
background load hits all alike; figures are the median over rounds and ratios against ``off`` measured in
the same run. Also printed: the shadow comparisons the gateway made and dropped, and the data plane's own
CPU time per request (``time.process_time``, the real ``DataPlane`` on the same registry in this process,
no HTTP: far less sensitive to the other processes on a loaded machine than wall-clock req/s).

    .venv/bin/python benchmarks/rollout.py [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cascade_load import _run  # noqa: E402 - benchmarks/: the keep-alive asyncio client

from serving.app import open_dataplane  # noqa: E402 - the package (ROOT is first on sys.path)
from serving.settings import ServeSettings  # noqa: E402
from tests.bundles import gate_bundle, open_trusting, train_bundle  # noqa: E402
from tests.serving.conftest import Gateway  # noqa: E402

STATES = ("off", "shadow", "canary")


def prepare(work: Path) -> tuple[Any, str, str, bytes]:
    """demo:1 released and demo:2 registered in a SQLite registry; a declared consumer's key; a body."""
    bundles = [train_bundle(work, version=v, seed=v - 1, trials=1) for v in (1, 2)]
    for bundle in bundles:
        gate_bundle(bundle)
    url = f"sqlite:///{work / 'registry.db'}"
    reg = open_trusting(url)
    for bundle in bundles:
        reg.register(bundle)
    reg.release("demo:1")
    reg.add_consumer("bench", owner="benchmarks")
    reg.declare("bench", "demo")
    key = reg.issue_key("bench")
    row = np.load(bundles[0] / "reference.npz")["inputs"][:1].astype(float).tolist()
    return reg, url, key, json.dumps({"model": "demo", "inputs": row}).encode()


def _set_state(reg: Any, state: str) -> None:
    if reg.rollout("demo") is not None:
        reg.rollback("demo", actor="bench")
    if state == "shadow":
        reg.start_rollout("demo:2", "shadow", actor="bench")
    elif state == "canary":
        reg.start_rollout("demo:2", "canary", "10%", actor="bench")


def switch(reg: Any, gw: Gateway, state: str) -> None:
    _set_state(reg, state)
    want = {} if state == "off" else {"mode": state}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rollout = httpx.get(gw.url + "/readyz").json()["rollouts"].get("demo", {})
        if {k: rollout.get(k) for k in want} == want and bool(rollout) == bool(want):
            return
        time.sleep(0.05)
    raise SystemExit(f"the gateway did not switch to {state}")


async def _one(conn: Any, bodies: dict[str, Any]) -> None:
    await conn.post(bodies["body"])


def measure(
    reg: Any, gw: Gateway, bodies: dict, rounds: int, seconds: float, conns: list[int]
) -> dict[tuple[str, int], dict]:
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for connections in conns:
        for turn in range(rounds):
            for state in STATES[:: 1 if turn % 2 == 0 else -1]:
                switch(reg, gw, state)
                asyncio.run(_run(gw.port, bodies, _one, connections, 0.5))  # warm-up
                result = asyncio.run(_run(gw.port, bodies, _one, connections, seconds))
                runs.setdefault((state, connections), []).append(result)
    return {
        k: {
            **{m: float(np.median([r[m] for r in rs])) for m in ("ops", "p50", "p99")},
            "range": (min(r["ops"] for r in rs), max(r["ops"] for r in rs)),
        }
        for k, rs in runs.items()
    }


def cpu_per_request(reg: Any, url: str, key: str, body: bytes, rounds: int) -> dict[tuple[str, int], float]:
    """Median data-plane CPU microseconds per request by (state, concurrency), in this process."""

    async def run() -> dict[tuple[str, int], float]:
        dp = open_dataplane(ServeSettings(registry_url=url, poll_interval=0.2))
        await dp.start()
        who = await dp.identify(key)

        async def timed(c: int, n: int) -> float:
            started = time.process_time()
            for _ in range(n):
                await asyncio.gather(*(dp.predict(who, body) for _ in range(c)))
            await dp.shadows.drain()
            return (time.process_time() - started) / (n * c) * 1e6

        samples: dict[tuple[str, int], list[float]] = {}
        try:
            for c in (1, 16):
                for turn in range(rounds * 2):
                    for state in STATES[:: 1 if turn % 2 == 0 else -1]:
                        await asyncio.to_thread(_set_state, reg, state)
                        await asyncio.sleep(0.5)  # the data plane's poller swaps the catalog
                        await timed(c, 500 // c)
                        samples.setdefault((state, c), []).append(await timed(c, 4000 // c))
        finally:
            await dp.stop()
        return {k: float(np.median(v)) for k, v in samples.items()}

    return asyncio.run(run())


def shadow_counts(gw: Gateway) -> str:
    text = httpx.get(gw.url + "/metrics").text
    lines = [
        ln
        for ln in text.splitlines()
        if ln.startswith(("lockgate_rollout_compared", "lockgate_rollout_shadow_dr"))
    ]
    return "\n".join(f"  {ln}" for ln in lines) or "  (none)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--connections", default="1,16", help="comma-separated, default 1,16")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lockgate-rollout-bench-"))
    gw = None
    try:
        reg, url, key, body = prepare(work)
        gw = Gateway(
            ["--registry-url", url, "--workers", "1"],
            env={"LOCKGATE_SERVE_POLL_INTERVAL": "0.2"},
            log=work / "gateway.log",
        )
        gw.wait_ready(path="/readyz")
        conns = [int(c) for c in args.connections.split(",")]
        results = measure(reg, gw, {"key": key, "body": body}, args.rounds, args.seconds, conns)
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} (2 cores); median of {args.rounds} rounds of {args.seconds:g}s")
        print(f"{'state':<7} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  vs off  req/s range")
        for (state, c), r in sorted(results.items(), key=lambda kv: (kv[0][1], STATES.index(kv[0][0]))):
            ratio = r["ops"] / results[("off", c)]["ops"]
            low, high = r["range"]
            figures = f"{r['ops']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}"
            print(f"{state:<7} {c:>3} {figures}  {ratio:>6.2f}  {low:.0f}-{high:.0f}")
        print("shadow comparisons (all rounds):\n" + shadow_counts(gw))
        gw.stop()
        cpu = cpu_per_request(reg, url, key, body, args.rounds)
        print(f"data plane CPU per request, in process (load average {os.getloadavg()[0]:.1f})")
        for (state, c), us in sorted(cpu.items(), key=lambda kv: (kv[0][1], STATES.index(kv[0][0]))):
            print(f"{state:<7} {c:>3} {us:>8.0f} us  x{us / cpu[('off', c)]:.2f}")
    finally:
        if gw is not None:
            gw.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
