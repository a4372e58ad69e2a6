"""Ray Tune for the search on a Ray cluster (``lockgate train --ray-address``, the optional extra
``lockgate[ray]``): :func:`tune_trials` runs one Tune trial per candidate and hands back each trial's
metrics in trial order. Ray is imported only when asked for (:func:`ray_modules`), so the rest of
training never needs it installed.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable
from typing import Any

from training.errors import ConfigError, TrainingError

__all__ = ["ray_modules", "tune_trials"]


def tune_trials(
    trial: Callable[..., dict[str, float]], count: int, shared: dict[str, Any], jobs: int
) -> list[dict[str, float]]:
    """``[trial(i, **shared) for i in range(count)]`` as Ray Tune trials on the cluster joined by
    :func:`training.cluster.fit_backend` (a grid over ``i``, one CPU each, ``jobs`` at a time); each
    trial's reported metrics, in trial order. ``shared`` travels once, through Ray's object store
    (``tune.with_parameters``). Tune's own files go to a temporary directory, removed afterwards."""
    _, tune = ray_modules()
    trainable = tune.with_resources(tune.with_parameters(_run_trial, trial=trial, shared=shared), {"cpu": 1})
    with tempfile.TemporaryDirectory(prefix="lockgate-tune-") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(list(range(count)))},
            # a trial's worker keeps its imports for the next trial (importing training costs seconds)
            tune_config=tune.TuneConfig(max_concurrent_trials=jobs, reuse_actors=True),
            run_config=tune.RunConfig(name="lockgate-search", storage_path=storage, verbose=0),
        )
        with contextlib.redirect_stdout(io.StringIO()):  # Tune prints its experiment table even when silent
            grid = tuner.fit()
        results = sorted(grid, key=lambda r: r.config["index"])
    failed = [r for r in results if r.error is not None]
    if failed or len(results) != count:
        why = str(failed[0].error).strip().splitlines()[-1] if failed else f"{len(results)} of {count} ran"
        raise TrainingError(f"a search trial failed on the Ray cluster: {why}",
                            "run the same command without --ray-address to see the error here")
    return [dict(r.metrics) for r in results]


def _run_trial(
    config: dict[str, Any], trial: Callable[..., dict[str, float]], shared: dict[str, Any]
) -> None:
    """A Tune function trainable: one candidate, its metrics reported once."""
    ray_modules()[1].report(trial(config["index"], **shared))


def ray_modules() -> tuple[Any, Any]:
    """The modules ``ray`` and ``ray.tune``."""
    try:  # the optional extra: only imported for --ray-address
        import ray
        from ray import tune
        from ray.util.joblib import register_ray
    except ImportError:
        raise ConfigError(
            "--ray-address needs Ray, which is not installed", "pip install 'lockgate[ray]'"
        ) from None
    register_ray()  # joblib's backend "ray"
    return ray, tune
