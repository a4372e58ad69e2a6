"""Where the search's fits run: joblib worker processes on this machine, or a Ray cluster
(``--ray-address``, the optional extra ``lockgate[ray]``): there the search's candidates are Ray Tune
trials (:func:`training.ray_tune.tune_trials`, one per candidate) and the cross-fit folds Ray tasks
(Ray's joblib backend). Either way the same candidates and folds are fitted and come back in the same
order, so the winner and the ONNX bytes do not depend on where, or how many at once, they ran.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from joblib import parallel_config

from training.config import TrainConfig
from training.errors import ConfigError
from training.ray_tune import ray_modules

__all__ = ["fit_backend"]


@contextmanager
def fit_backend(config: TrainConfig) -> Iterator[TrainConfig]:
    """The joblib backend for ``config`` while the training runs; yields the config to train with (on
    Ray without ``--jobs``: ``jobs`` = the cluster's CPUs)."""
    if config.ray_address is None:
        # the workers get this process's native thread count: the numbers do not depend on ``jobs``
        with parallel_config(backend="loky", inner_max_num_threads=config.threads):
            yield config
        return
    ray, _ = ray_modules()
    started = not ray.is_initialized()
    if started:
        _reachable(config.ray_address)
        try:
            ray.init(address=config.ray_address, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(
                f"cannot join the Ray cluster at {config.ray_address!r}: {e}",
                "start one with 'ray start --head' and pass the address it prints, e.g. 127.0.0.1:6379",
            ) from None
    try:
        jobs = config.jobs if config.jobs > 1 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        with parallel_config(backend="ray"):
            yield config.model_copy(update={"jobs": jobs})
    finally:
        if started:
            ray.shutdown()


def _reachable(address: str) -> None:
    """Fail in seconds on a HOST:PORT nobody listens on (``ray.init`` would retry for minutes)."""
    host, _, port = address.rpartition(":")
    if not (host and port.isascii() and port.isdigit()):
        return  # "auto", "ray://...": Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(
            f"no Ray cluster answers at {address!r} ({e.strerror or e})",
            "start one with 'ray start --head' and pass the address it prints, e.g. 127.0.0.1:6379",
        ) from None
