"""The pieces of serving/rollout.py without a gateway: the canary hash is uniform, deterministic and the
same in another process; answers are compared by class name, not column position."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

from serving.rollout import canary_bucket, compare_answers, routes_to_candidate


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


def test_answers_are_compared_by_class_name():
    live = (np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], dtype=np.float32))
    # the candidate lists its classes the other way round: column 0 is "yes"
    cand = (np.array([1, 1, 0]), np.array([[0.2, 0.8], [0.45, 0.55], [0.7, 0.3]], dtype=np.float32))
    same, dp = compare_answers(["no", "yes"], live, ["yes", "no"], cand)
    assert same == 2  # no/no, yes/no, yes/yes
    assert np.allclose(dp, [0.1, 0.15, 0.1], atol=1e-6)
    same, dp = compare_answers(["no", "yes"], live, ["no", "maybe"], cand)
    assert dp is None  # other classes: no probability difference to speak of
