"""Benchmark of the safety gate (``lockgate check``), with the shipped default policy.

1. Trains the demo bundle (breast_cancer, logistic regression, the training defaults) and times the gate
   on it, signed and with the machine's sandbox isolation (bwrap/unshare), against a baseline in the same
   run (unsigned, resource limits only): median of 3, wall time per check and in total. Target: < 3 s.
2. Times the rejection of every hostile file of ``safety.corpus`` (truncated, random bytes, checker
   failure, custom operator, path-traversing external data, memory bomb, CPU bomb, wrong contract,
   NaN-producing, non-deterministic). Target: each rejected in under 60 s, by the check it targets.

Run: ``.venv/bin/python benchmarks/gate.py`` (about a minute; the CPU bomb alone uses the default
20 CPU-second sandbox limit).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE, ModelCard, sha256_file
from cascade_registry.attestation import generate_private_key
from safety import load_policy, run_gate
from safety.corpus import HOSTILE_CHECKS, hostile_models
from safety.isolation import Isolation
from safety.report import format_table

TARGET_DEMO_SECONDS = 3.0  # issue 12: the signed, isolated gate on the demo bundle stays under 3 s
REPEATS = 3
TARGET_HOSTILE_SECONDS = 60.0


def _demo_bundle(root: Path) -> Path:
    from training import TrainConfig, train

    return train(TrainConfig(out=root, progress=False))


def _variant(good: Path, root: Path, name: str, raw: bytes) -> Path:
    target = root / f"hostile-{name}"
    shutil.copytree(good, target)
    (target / MODEL_FILE).write_bytes(raw)
    card = json.loads((target / CARD_FILE).read_text())
    card["export"]["onnx_sha256"] = sha256_file(target / MODEL_FILE)
    (target / CARD_FILE).write_text(json.dumps(card))
    return target


def main() -> int:
    policy = load_policy()
    print(
        f"lockgate check benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, default policy"
    )
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        bundle = _demo_bundle(root)
        print(f"trained the demo bundle in {time.perf_counter() - t0:.1f} s: {bundle.name}\n")

        key = generate_private_key()
        isolation = Isolation.detect()
        bare = Isolation.of("none")
        run_gate(bundle, policy, isolation=bare, write=False)  # warm the file cache once
        timings: dict[str, list[float]] = {"bare": [], "isolated": []}
        for _ in range(REPEATS):  # interleaved, so both see the same load on the shared machine
            for label, level in (("bare", bare), ("isolated", isolation)):
                t0 = time.perf_counter()
                signer = key if label == "isolated" else None
                report = run_gate(bundle, policy, sign_key=signer, isolation=level)
                timings[label].append(time.perf_counter() - t0)
        total = statistics.median(timings["isolated"])
        bare_total = statistics.median(timings["bare"])
        print(format_table(report))
        print(
            f"\n== demo bundle: gate wall time {total:.2f} s, median of {REPEATS}, signed, sandbox isolation "
            f"'{isolation.level}' (target < {TARGET_DEMO_SECONDS:.0f} s) "
            f"-> {'OK' if total < TARGET_DEMO_SECONDS and report.passed else 'MISSED'}"
        )
        print(
            f"   baseline in the same run: unsigned, isolation 'none' (limits only): {bare_total:.2f} s "
            f"-> isolation + signing cost x{total / bare_total:.2f}"
        )
        slowest = sorted(report.checks, key=lambda c: -c.seconds)[:3]
        print("   slowest checks: " + ", ".join(f"{c.name} {c.seconds:.2f} s" for c in slowest))

        card = ModelCard.model_validate_json((bundle / CARD_FILE).read_text())
        corpus = hostile_models(len(card.features), len(card.classes), (bundle / MODEL_FILE).read_bytes())
        target = f"each rejected in < {TARGET_HOSTILE_SECONDS:.0f} s by the right check"
        print(f"\n== hostile files (target: {target})")
        print(f"{'file':24s} {'seconds':>8s}  {'expected check':18s} {'verdict':8s} first failing check")
        worst, all_ok = 0.0, True
        for name, raw in corpus.items():
            path = _variant(bundle, root, name, raw)
            t0 = time.perf_counter()
            hostile = run_gate(path, policy)
            seconds = time.perf_counter() - t0
            worst = max(worst, seconds)
            expected = HOSTILE_CHECKS[name]
            status = {c.name: c.status for c in hostile.checks}
            first = next((c for c in hostile.checks if c.status in {"fail", "error"}), None)
            right = status.get(expected) == "fail" and not hostile.passed and seconds < TARGET_HOSTILE_SECONDS
            all_ok &= right
            first_text = f"{first.name}: {first.message[:70]}" if first else "-"
            print(f"{name:24s} {seconds:8.2f}  {expected:18s} {'OK' if right else 'MISSED':8s} {first_text}")
        print(
            f"\nslowest rejection {worst:.2f} s (target < {TARGET_HOSTILE_SECONDS:.0f} s) -> "
            f"{'OK' if all_ok else 'MISSED'}"
        )
        return 0 if all_ok and report.passed and total < TARGET_DEMO_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
