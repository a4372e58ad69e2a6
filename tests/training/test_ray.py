"""``lockgate train --ray-address``: the search's candidates as Ray Tune trials and the cross-fit folds as
Ray tasks, on a local Ray cluster started by the test (one CPU: one worker process imports training once
and runs every trial), give the same ONNX bytes as one fit at a time here. Ray (``lockgate[ray]``) is in
the dev install; without it, the one-line error is checked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train
from training.errors import ConfigError

HAS_RAY = importlib.util.find_spec("ray") is not None


def _config(out: Path, **extra) -> TrainConfig:
    return TrainConfig(
        data="breast_cancer", model="logistic_regression", calibration="sigmoid", trials=3,
        calibration_cv=2, out=out, progress=False, **extra,
    )


@pytest.mark.skipif(not HAS_RAY, reason="the optional extra lockgate[ray] is not installed")
def test_a_search_on_a_local_ray_cluster_gives_the_same_bytes(tmp_path: Path):
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        address = ray.get_runtime_context().gcs_address
        on_ray = ModelBundle.load(train(_config(tmp_path / "ray", ray_address=address)))
    finally:
        ray.shutdown()
    here = ModelBundle.load(train(_config(tmp_path / "here")))
    assert (on_ray.path / "model.onnx").read_bytes() == (here.path / "model.onnx").read_bytes()
    assert [c.score for c in on_ray.card.search.candidates] == [c.score for c in here.card.search.candidates]
    assert "Ray Tune trial" in on_ray.card.search.method and "Ray" not in here.card.search.method


@pytest.mark.skipif(HAS_RAY, reason="Ray is installed: the search runs on it above")
def test_without_ray_the_address_is_refused_with_the_install_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"lockgate\[ray\]"):
        train(_config(tmp_path / "x", ray_address="127.0.0.1:6379"))
