"""``train(config) -> bundle path``: the one orchestrator of the training package.

load data -> four disjoint splits -> random search (validation) -> calibration (calibration split) ->
metrics (test split) -> ONE ONNX graph (model + calibrator) -> parity check -> bundle written atomically.
"""

from __future__ import annotations

import hashlib
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cascade_registry.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    RELIABILITY_FILE,
    CalibrationInfo,
    DatasetInfo,
    ExportInfo,
    InputPolicy,
    ModelCard,
    ModelRef,
    RuntimeInfo,
    atomic_directory,
    write_json_atomic,
)
from training.calibration import Calibrated, calibrate, check_method_supported, merge_close_knots
from training.card import consume_text, describe_features, describe_infrastructure, estimate_cost
from training.config import TrainConfig
from training.datasets import Dataset, load_dataset
from training.errors import ExportError, OutputExistsError, TrainingError
from training.export import (
    OPSET,
    BaseGraph,
    base_error,
    build_model,
    head_of,
    onnx_predict,
    response_method,
)
from training.families import Family, get_family
from training.metrics import calibration_metrics, report_metrics
from training.reliability import plot_reliability
from training.search import random_search
from training.splits import Splits, split_dataset

__all__ = ["train"]


def train(config: TrainConfig) -> Path:
    """Train, calibrate, evaluate and export one model; return the bundle directory.

    Raises :class:`training.errors.TrainingError` (with what was wrong and how to fix it) for bad
    input; nothing is left on disk when anything fails.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=config.threads):
        return _train(config)


def _train(config: TrainConfig) -> Path:
    started, cpu_started = time.perf_counter(), time.process_time()
    target = config.bundle_dir
    if target.exists() and not config.overwrite:
        raise OutputExistsError(
            f"output directory {target} already exists", "pass --overwrite, or another --version/--out"
        )
    _check_writable_parent(target)
    family = get_family(config.model)
    check_method_supported(family.name, family.make_estimator(dict(family.defaults), config.seed),
                           config.calibration)
    ds = load_dataset(config)
    splits = split_dataset(
        ds, config.seed, config.validation_fraction, config.calibration_fraction, config.test_fraction
    )
    search = random_search(
        family, splits.train, splits.validation, config.metric, config.trials, config.seed, config.progress
    )
    estimator = search.estimator
    cal = calibrate(estimator, config.calibration, splits.calibration, splits.validation, config.ece_bins)
    t_export = time.perf_counter()
    kind = {"none": "proba", "temperature": "scores"}.get(cal.method, "response")
    base = family.export(estimator, len(ds.feature_names), len(ds.classes), kind)
    check_X = np.concatenate([s.X for s in splits]).astype(np.float32)
    score_error = base_error(base, estimator, check_X, len(ds.classes), kind)
    merged = merge_close_knots(cal.native, score_error) if cal.method == "isotonic" else 0
    export_seconds = time.perf_counter() - t_export

    test = splits.test
    before = np.asarray(estimator.predict_proba(test.X), dtype=np.float64)
    after = cal.predict_proba(test.X)
    metrics = report_metrics(test.y, after, ds.classes, config.ece_bins, test.segments)
    threshold = _recommended_threshold(cal, splits) if len(ds.classes) == 2 else None

    t_export = time.perf_counter()
    onnx_bytes, export_info, reference = _export(config, family, ds, base, cal, splits)
    export_seconds += time.perf_counter() - t_export

    policy = InputPolicy(max_abs_value=_max_abs_value(splits.train.X))
    runtime = RuntimeInfo(
        total_seconds=round(time.perf_counter() - started, 4),
        search_seconds=round(search.seconds, 4),
        per_candidate_seconds=search.per_candidate_seconds,
        calibration_seconds=round(cal.seconds, 4),
        export_seconds=round(export_seconds, 4),
    )
    card = ModelCard(
        ref=ModelRef(name=config.name, version=config.version),
        task="binary" if len(ds.classes) == 2 else "multiclass",
        family=family.name,
        classes=ds.classes,
        features=describe_features(ds.feature_names, splits.train.X),
        input_policy=policy,
        dataset=_dataset_info(ds, splits),
        hyperparameters=search.info.best_params,
        search=search.info,
        calibration=CalibrationInfo(
            method=cal.method,  # type: ignore[arg-type]
            requested=cal.requested,
            reason=cal.reason
            + (
                f"; {merged} isotonic knots closer than the export's rounding allows were merged into "
                "narrow jumps (see docs/training.md)"
                if merged
                else ""
            ),
            holdout_rows=len(test.y),
            before=calibration_metrics(test.y, before, config.ece_bins),
            after=calibration_metrics(test.y, after, config.ece_bins),
        ),
        metrics=metrics,
        recommended_threshold=threshold,
        export=export_info,
        infrastructure=describe_infrastructure(),
        runtime=runtime,
        cost=estimate_cost(time.process_time() - cpu_started, config.price_per_core_hour),
        seed=config.seed,
        upstream=[],
        how_to_consume=consume_text(
            config.name, config.version, ds.classes, len(ds.feature_names), cal.method, threshold, policy
        ),
        created_at=datetime.now(UTC),
        details={
            "family_description": family.description,
            "calibration_input": _calibration_input(cal.method, estimator),
            **_temperature_details(cal, estimator, splits, config.ece_bins),
            "export_score_error": score_error,
            "isotonic_knots_merged": merged,
            "split_fractions": {
                "validation": config.validation_fraction,
                "calibration": config.calibration_fraction,
                "test": config.test_fraction,
            },
            "duplicate_rows_grouped": splits.duplicate_rows,
            "reference_rows": int(reference["inputs"].shape[0]),
            "metrics_split": "test",
            **(estimator.card_details() if hasattr(estimator, "card_details") else {}),
        },
    )
    try:
        with atomic_directory(target, overwrite=config.overwrite) as tmp:
            (tmp / MODEL_FILE).write_bytes(onnx_bytes)
            (tmp / REFERENCE_FILE).write_bytes(_npz_bytes(reference))
            plot_reliability(
                tmp / RELIABILITY_FILE,
                test.y,
                before,
                after,
                ds.classes,
                config.ece_bins,
                f"{config.name}:{config.version} {family.name}, calibration {cal.method} (test split)",
            )
            for fname, data in (estimator.card_files() if hasattr(estimator, "card_files") else {}).items():
                (tmp / fname).write_bytes(data)
            write_json_atomic(tmp / CARD_FILE, card)
            tmp.chmod(0o755)
            for f in tmp.iterdir():
                f.chmod(0o644)
    except FileExistsError:
        raise OutputExistsError(
            f"output directory {target} already exists", "pass --overwrite, or another --version/--out"
        ) from None
    except OSError as e:
        raise TrainingError(
            f"cannot write the bundle to {target}: {e.strerror or e}", "pick a writable --out directory"
        ) from None
    return target


# ------------------------------------------------------------------------------------------ steps
def _export(
    config: TrainConfig, family: Family, ds: Dataset, base: BaseGraph, cal: Calibrated, splits: Splits
) -> tuple[bytes, ExportInfo, dict[str, np.ndarray]]:
    n_classes = len(ds.classes)
    metadata = {
        "lockgate.name": config.name,
        "lockgate.version": str(config.version),
        "lockgate.family": family.name,
        "lockgate.calibration": cal.method,
        "lockgate.classes": "\x1f".join(ds.classes),
        "lockgate.features": "\x1f".join(ds.feature_names),
    }
    doc = (
        f"lockgate {config.name}:{config.version}: {family.name} + {cal.method} calibration. "
        "input float32 [N,F]; label int64 [N] (class index); probabilities float32 [N,C]."
    )
    model = build_model(base, head_of(cal.native, n_classes), doc, metadata, f"lockgate_{family.name}")
    model.model_version = config.version
    onnx_bytes = model.SerializeToString(deterministic=True)

    test = splits.test
    n_ref = min(config.reference_rows, len(test.y))
    ref_X = test.X[:n_ref].astype(np.float32)
    ref_native = cal.predict_proba(ref_X.astype(np.float64))
    check_X = np.concatenate([ref_X, test.X.astype(np.float32), splits.calibration.X.astype(np.float32)])
    _, onnx_probs = onnx_predict(onnx_bytes, check_X)
    native = cal.predict_proba(check_X.astype(np.float64))
    diff = float(np.max(np.abs(onnx_probs.astype(np.float64) - native)))
    if not diff <= config.parity_limit:
        raise ExportError(
            f"the exported {family.name} + {cal.method} graph differs from the native model by {diff:.3g} "
            f"(limit {config.parity_limit:g}); the bundle was not written",
            "try another --calibration or --model, and report this case",
        )
    info = ExportInfo(
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        opset={k or "ai.onnx": v for k, v in OPSET.items()},
        parity_max_abs_diff=diff,
        parity_rows=int(check_X.shape[0]),
        parity_limit=config.parity_limit,
        precision=base.precision,
        converter=f"{base.converter} (base model) + lockgate ONNX calibrator/renormalization",
    )
    reference: dict[str, np.ndarray] = {
        "inputs": ref_X,
        "probabilities": ref_native.astype(np.float64),
        "holdout_inputs": test.X.astype(np.float32),
        "holdout_labels": test.y.astype(np.int64),
    }
    if test.segments is not None:
        reference["holdout_segments"] = test.segments.astype(str)
    return onnx_bytes, info, reference


def _calibration_input(method: str, estimator: Any) -> str:
    if method == "none":
        return "none"
    if method == "temperature":
        return "decision_scores" if hasattr(estimator, "decision_scores") else "decision_function"
    return response_method(estimator)


def _temperature_details(cal: Calibrated, estimator: Any, splits: Splits, bins: int) -> dict[str, Any]:
    """The fitted T and what it did to the split it was fitted on (log loss can only go down there)."""
    if cal.method != "temperature":
        return {}
    y = splits.calibration.y
    before = calibration_metrics(y, np.asarray(estimator.predict_proba(splits.calibration.X)), bins)
    after = calibration_metrics(y, cal.predict_proba(splits.calibration.X), bins)
    return {
        "temperature": cal.native.temperature_,
        "temperature_fit": {
            "split": "calibration",
            "rows": len(y),
            "objective": "log loss of softmax(logits / T), T in [exp(-4), exp(4)]",
            "before": before.model_dump(),
            "after": after.model_dump(),
        },
    }


def _check_writable_parent(target: Path) -> None:
    """Fail before training when the bundle could not be created (a file in the way)."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TrainingError(
                    f"cannot create the bundle under {parent}: it is a file, not a directory",
                    "pick another --out directory",
                )
            return


def _recommended_threshold(cal: Calibrated, splits: Splits) -> float:
    """The threshold on p(positive) maximizing F1 on the validation split (ties: closest to 0.5)."""
    from sklearn.metrics import f1_score

    p = cal.predict_proba(splits.validation.X)[:, 1]
    y = splits.validation.y
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scores = [f1_score(y, (p >= t).astype(int), zero_division=0) for t in grid]
    best = max(range(len(grid)), key=lambda i: (round(scores[i], 12), -abs(grid[i] - 0.5)))
    return float(grid[best])


def _dataset_info(ds: Dataset, splits: Splits) -> DatasetInfo:
    return DatasetInfo(
        name=ds.name,
        description=ds.description + "; features rounded to float32 (the exported model's input type)",
        source=ds.source,
        rows=len(ds.y),
        n_features=len(ds.feature_names),
        sha256=ds.sha256,
        target=ds.target,
        segment=ds.segment_name,
        splits={s.name: s.info(ds.classes) for s in splits},
        splits_disjoint=splits.disjoint,
        missing_values=ds.missing_values,
    )


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _max_abs_value(train_X: np.ndarray) -> float:
    """The serving edge refuses magnitudes a million times beyond anything seen in training.

    Such values are data errors, not observations, and they overflow float32 inside some graphs (an MLP
    turns +-1e38 into NaN); values far outside the training range but below this bound are still served,
    with a warning.
    """
    observed = float(np.abs(train_X).max(initial=1.0))
    return float(min(3.0e38, 1e6 * max(1.0, observed)))

