"""The pieces of serving/rollout.py without a gateway: the canary hash is uniform, deterministic and the
same in another process; answers are compared by class name, not column position; the shadow runner is
bounded (tasks and rows) and compares the real ONNX answers of two bundles."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys

import numpy as np
from prometheus_client import REGISTRY

from serving.batcher import MicroBatcher
from serving.catalog import ModelSlot
from serving.predictor import OnnxPredictor
from serving.rollout import (
    Alignment,
    RolloutPlan,
    ShadowRunner,
    canary_bucket,
    compare_answers,
    routes_to_candidate,
)
from serving.validation import RowValidator


def test_the_canary_hash_is_uniform_and_the_same_in_every_process():
    keys = [f"req-{i}" for i in range(20_000)]
    buckets = np.array([canary_bucket(k) for k in keys])
    assert buckets.min() >= 0 and buckets.max() < 1
    counts = np.histogram(buckets, bins=10, range=(0, 1))[0]
    expected = len(keys) / 10
    assert np.abs(counts - expected).max() <= 4 * math.sqrt(expected * 0.9)  # 4 sigma per decile
    share = sum(routes_to_candidate(k, 0.1) for k in keys) / len(keys)
    assert abs(share - 0.1) <= 4 * math.sqrt(0.1 * 0.9 / len(keys))
    code = "from serving.rollout import canary_bucket; print(repr(canary_bucket('req-7')))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(other.stdout) == canary_bucket("req-7")  # not Python's per-process salted hash()


def _slot(bundle) -> ModelSlot:
    p = OnnxPredictor.from_bundle(bundle)
    return ModelSlot.of(p, RowValidator(p.card, 1024, False), MicroBatcher(p, 512, True))


def test_answers_are_compared_by_class_name():
    live = (np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], dtype=np.float32))
    # the candidate lists its classes the other way round: column 0 is "yes"
    cand = (np.array([1, 1, 0]), np.array([[0.2, 0.8], [0.45, 0.55], [0.7, 0.3]], dtype=np.float32))
    swapped = Alignment.between(["no", "yes"], ["yes", "no"], same_rows=True)
    assert swapped.same_rows and swapped.columns == [1, 0]
    same, dp = compare_answers(live, cand, swapped)
    assert same == 2  # no/no, yes/no, yes/yes
    assert np.allclose(dp, [0.1, 0.15, 0.1], atol=1e-6)
    other = Alignment.between(["no", "yes"], ["no", "maybe"], same_rows=False)
    same, dp = compare_answers(live, cand, other)
    assert (same, dp, other.same_rows) == (0, None, False)  # maybe/no, maybe/yes, no/yes; no |dp|


def _dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "lockgate_rollout_shadow_dropped_total", {"model": "demo", "reason": reason}
        )
        or 0
    )


def test_the_shadow_runner_is_bounded_and_compares_real_answers(demo_bundle, demo_bundle_v2):
    live, cand = _slot(demo_bundle), _slot(demo_bundle_v2)
    x = np.load(demo_bundle / "reference.npz")["inputs"][:4].astype(np.float32)
    answer = live.predictor.predict(x)
    plan = RolloutPlan(
        "shadow",
        1.0,
        "request_id",
        1,
        cand,
        Alignment.between(live.predictor.classes, cand.predictor.classes, True),
    )
    same_before = (
        REGISTRY.get_sample_value(
            "lockgate_rollout_compared_rows_total", {"model": "demo", "version": "2", "agreement": "same"}
        )
        or 0
    )
    busy, errors = _dropped("busy"), _dropped("error")

    async def run() -> None:
        runner = ShadowRunner(max_inflight=2, max_rows=6)
        runner.offer("demo", plan, (x, None), answer)  # 4 rows
        runner.offer("demo", plan, (x, None), answer)  # 8 > 6 rows: dropped
        runner.offer("demo", plan, (x[:2], None), (answer[0][:2], answer[1][:2]))
        runner.offer("demo", plan, (x[:1], None), (answer[0][:1], answer[1][:1]))
        await runner.drain()

    asyncio.run(run())
    assert _dropped("busy") - busy == 2 and _dropped("error") == errors  # the 2nd (rows) and the 4th (tasks)
    expected = int((answer[0] == cand.predictor.predict(x)[0]).sum()) + int(
        (answer[0][:2] == cand.predictor.predict(x[:2])[0]).sum()
    )
    same_after = (
        REGISTRY.get_sample_value(
            "lockgate_rollout_compared_rows_total", {"model": "demo", "version": "2", "agreement": "same"}
        )
        or 0
    )
    assert same_after - same_before == expected
