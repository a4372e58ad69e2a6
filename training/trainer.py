"""``train(config) -> bundle path``: the one orchestrator of the training package.

load data -> disjoint splits -> random search (validation) -> refit + calibration (cross-fitted
out-of-fold responses, or the calibration split) -> metrics (test split) -> ONE ONNX graph (model(s) +
calibrator(s)) -> parity check -> card (:mod:`training.card`) -> bundle written atomically.

This is the one place that checks family x calibration method (:func:`check_method_supported`).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from cascade_registry.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    RELIABILITY_FILE,
    ModelCard,
    atomic_directory,
    write_json_atomic,
)
from training.calibration import IsotonicCalibrator, logit_matrix, softmax
from training.card import RunFacts, build_card
from training.cluster import fit_backend
from training.compose import CalibratedModel, build_model
from training.config import TrainConfig
from training.crossfit import CalibrationFit, fit_calibrated
from training.datasets import Dataset, TableOverrides, load_dataset
from training.errors import ConfigError, ExportError, OutputExistsError, TrainingError
from training.exporters import base_error
from training.families import Family, bind_inputs, family_names, get_family
from training.graph import BaseGraph, onnx_predict
from training.preprocessing import Preprocessor, fit_preprocessor
from training.reliability import plot_reliability
from training.response import has_log_odds, has_logits, response, response_kind
from training.search import random_search
from training.splits import Split, Splits, encode_splits, feature_digests, split_dataset
from training.upstream import Upstream, add_upstream_features, resolve_upstreams

__all__ = ["ISOTONIC_KNOT_FACTOR", "SCORE_CONSISTENCY", "bundle_directory", "check_method_supported",
           "npz_bytes", "train"]

#: isotonic knots closer than this many times the export's score error are merged
ISOTONIC_KNOT_FACTOR = 1e4
#: the largest |softmax(logits) - predict_proba| for the logits to count as the model's own
SCORE_CONSISTENCY = 1e-6


def train(config: TrainConfig, registry_url: str | None = None) -> Path:
    """Train, calibrate, evaluate and export one model; return the bundle directory.

    With ``config.upstream`` the upstream models are looked up (read-only) in the registry at
    ``registry_url`` and their outputs become features (:mod:`training.upstream`).
    Raises :class:`training.errors.TrainingError` (with what was wrong and how to fix it) for bad
    input; nothing is left on disk when anything fails.
    """
    with threadpool_limits(limits=config.threads), fit_backend(config) as resolved:
        return _train(resolved, registry_url)


def _upstreams(config: TrainConfig, registry_url: str | None) -> list[Upstream]:
    if not config.upstream:
        return []
    if registry_url is None:
        raise ConfigError("--upstream needs the registry the upstream models were released in",
                          "pass --registry-url or set LOCKGATE_REGISTRY_URL")
    return resolve_upstreams(config.upstream_specs, registry_url)


def _train(config: TrainConfig, registry_url: str | None) -> Path:
    started, cpu_started = time.perf_counter(), time.process_time()
    _check_target(config)
    family = _configured(get_family(config.model), config, registry_url)
    check_method_supported(family, config.calibration, config.seed)
    upstreams = _upstreams(config, registry_url)
    ds = load_dataset(config.data, config.seed, config.target, config.segment, config.missing_policy,
                      TableOverrides(config.categorical, config.numeric, config.drop), config.time_column)
    data_sha256 = ds.sha256  # of the table as given, before any upstream feature
    raw = split_dataset(ds, config.seed, config.validation_fraction, config.effective_calibration_fraction,
                        config.test_fraction)
    if upstreams:
        ds, raw = add_upstream_features(ds, raw, upstreams, config.drop)
    family = bind_inputs(family, ds.inputs, ds.feature_names)
    pre = fit_preprocessor(ds.feature_names, ds.column_kinds, raw.train.X, _categorical(raw.train),
                           impute=config.missing_policy == "auto", unknown=config.unknown_category,
                           onehot_max=config.onehot_max or family.onehot_max, rare_min=config.rare_min,
                           y=raw.train.y, n_classes=len(ds.classes), seed=config.seed)
    splits = encode_splits(raw, pre.transform, pre.train_design)
    refit_note = ("then refit on train + validation (see card.calibration.refit)"
                  if config.refit or config.calibration_cv else "not refitted")
    search_with = family.search or random_search
    search = search_with(family, splits.train, splits.validation, config.metric, config.trials, config.seed,
                         config.progress, refit_note, jobs=config.jobs)
    fit = fit_calibrated(family, search.params, search.estimator, splits, config, len(ds.classes))
    _check_logits(fit, splits)
    t_export = time.perf_counter()
    bases, score_errors, merged = _base_graphs(family, fit.model, ds, splits)
    onnx_bytes, parity_rows, diff = _export(config, family, ds, bases, fit, splits, pre, raw)
    facts = RunFacts(
        config=config, family=family, ds=ds, splits=splits, search=search, fit=fit, onnx_bytes=onnx_bytes,
        base=bases[0][0], parity_rows=parity_rows, parity_diff=diff, score_errors=score_errors,
        merged_knots=merged, threshold=_recommended_threshold(fit) if len(ds.classes) == 2 else None,
        export_seconds=time.perf_counter() - t_export, started=started, cpu_started=cpu_started, pre=pre,
        upstreams=tuple(upstreams), data_sha256=data_sha256,
    )
    card = build_card(facts)
    _write_bundle(config, card, onnx_bytes, _reference(config, fit.model, splits, raw), fit.model, ds, splits,
                  search.files)
    return config.bundle_dir


# ------------------------------------------------------------------------------------------ checks
def _configured(family: Family, config: TrainConfig, registry_url: str | None) -> Family:
    """The family for this run's own options (``Family.configure``); refuse options it cannot take."""
    if family.configure is not None:
        return family.configure(family, config, registry_url)
    if config.deep_options:
        raise ConfigError(
            f"{', '.join(config.deep_options)}: the {family.name} family has no such options",
            "transfer learning (--init-from, --freeze, --unfreeze-after) and --size-search need --model mlp",
        )
    return family


def check_method_supported(family: Family, method: str, seed: int) -> None:
    """Refuse a family x method that cannot work, before any training."""
    if method != "temperature" or has_logits(family.make_estimator(dict(family.defaults), seed)):
        return
    able = []
    for name in family_names():
        fam = get_family(name)
        try:
            if has_logits(fam.make_estimator(dict(fam.defaults), 0)):
                able.append(name)
        except Exception:  # noqa: BLE001 - a plugin family that cannot be built is simply not listed
            continue
    raise ConfigError(
        f"calibration 'temperature' needs the model's logits (decision_function or decision_scores) and "
        f"the {family.name} family has none (its probabilities are not a softmax of scores)",
        f"use --calibration sigmoid, isotonic, auto or none (or beta) with {family.name}, or --calibration "
        f"temperature with one of {', '.join(able)}",
    )


def _check_logits(fit: CalibrationFit, splits: Splits) -> None:
    """Temperature scaling needs logits whose softmax is the model's own probabilities."""
    if fit.method != "temperature" or fit.requested != "temperature":
        return
    est = fit.model.pairs[0].estimator
    R = response(est, splits.test.X)
    L = logit_matrix(R, len(est.classes_), response_kind(est))
    gap = float(np.max(np.abs(softmax(L) - np.asarray(est.predict_proba(splits.test.X), np.float64))))
    if not gap <= SCORE_CONSISTENCY:
        raise TrainingError(
            f"calibration 'temperature' needs scores whose softmax is the model's probabilities; "
            f"{type(est).__name__}'s differ from predict_proba by {gap:.3g}",
            "use --calibration sigmoid, isotonic, auto or none with this model",
        )


def _check_target(config: TrainConfig) -> None:
    target = config.bundle_dir
    if target.exists() and not config.overwrite:
        raise OutputExistsError(
            f"output directory {target} already exists", "pass --overwrite, or another --version/--out"
        )
    for parent in target.parents:  # fail before training when a file is in the way
        if parent.exists():
            if not parent.is_dir():
                raise TrainingError(
                    f"cannot create the bundle under {parent}: it is a file, not a directory",
                    "pick another --out directory",
                )
            return


# ------------------------------------------------------------------------------------------ export
def _base_graphs(family: Family, model: CalibratedModel, ds: Dataset, splits: Splits
                 ) -> tuple[list[tuple[BaseGraph, Any]], list[tuple[float, float]], int]:
    """Each pair's base graph; isotonic knots closer than the graph's score error are merged."""
    check_X = np.concatenate([s.X for s in splits]).astype(np.float32)
    out, errors, merged = [], [], 0
    for pair in model.pairs:
        monotone = pair.calibrator.monotone and has_log_odds(pair.estimator)
        kind = "monotone_response" if monotone else "response"
        base = family.export(pair.estimator, check_X.shape[1], len(ds.classes), kind)
        err = base_error(base, pair.estimator, check_X, monotone)
        if isinstance(pair.calibrator, IsotonicCalibrator):
            absolute, relative = ISOTONIC_KNOT_FACTOR * err[0], ISOTONIC_KNOT_FACTOR * err[1]
            merged += pair.calibrator.merge_close_knots(absolute, relative)
        out.append((base, pair.calibrator))
        errors.append(err)
    return out, errors, merged


def _categorical(split: Split) -> np.ndarray:
    return split.C if split.C is not None else np.zeros((len(split.y), 0), dtype="<U1")


def _export(config: TrainConfig, family: Family, ds: Dataset, bases: list, fit: CalibrationFit,
            splits: Splits, pre: Preprocessor, raw: Splits) -> tuple[bytes, int, float]:
    """ONE graph: preprocessing (when the table needs it) + model(s) + calibrator(s); parity-checked on
    the raw rows (the graph's own inputs) against the native model on the natively encoded rows."""
    metadata = {
        "lockgate.name": config.name,
        "lockgate.version": str(config.version),
        "lockgate.family": family.name,
        "lockgate.calibration": fit.method,
        "lockgate.classes": "\x1f".join(ds.classes),
        "lockgate.features": "\x1f".join(ds.feature_names),
    }
    pairs = f" ({len(bases)} cross-fitted pairs averaged)" if len(bases) > 1 else ""
    doc = (
        f"lockgate {config.name}:{config.version}: {family.name} + {fit.method} calibration{pairs}. "
        "input float32 [N,F]; label int64 [N] (class index); probabilities float32 [N,C]."
    )
    model = build_model(bases, splits.train.X.shape[1], len(ds.classes), doc, metadata,
                        f"lockgate_{family.name}", config.version)
    onnx_bytes = pre.fuse(model).SerializeToString(deterministic=True)
    check_X = np.concatenate([s.X for s in raw if s.name != "train"] + [raw.train.X[:256]])
    check_C = np.concatenate([_categorical(s) for s in raw if s.name != "train"]
                             + [_categorical(raw.train)[:256]])
    check_X = check_X.astype(np.float32)
    _, onnx_probs = onnx_predict(onnx_bytes, check_X, check_C)
    native = fit.model.predict_proba(pre.transform(check_X.astype(np.float64), check_C))
    diff = float(np.max(np.abs(onnx_probs.astype(np.float64) - native)))
    if not diff <= config.parity_limit:
        raise ExportError(
            f"the exported {family.name} + {fit.method} graph differs from the native model by {diff:.3g} "
            f"(limit {config.parity_limit:g}); the bundle was not written",
            "try another --calibration or --model, and report this case",
        )
    return onnx_bytes, int(check_X.shape[0]), diff


def _recommended_threshold(fit: CalibrationFit) -> float:
    """The threshold on p(positive) maximizing F1 on the calibrator's rows (ties: closest to 0.5).

    Those rows' responses are out-of-fold (cross-fit) or from the calibration split: unseen by the model.
    """
    p, y = fit.fit_proba[:, 1], fit.fit_y
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scores = [f1_score(y, (p >= t).astype(int), zero_division=0) for t in grid]
    best = max(range(len(grid)), key=lambda i: (round(scores[i], 12), -abs(grid[i] - 0.5)))
    return float(grid[best])


# ------------------------------------------------------------------------------------------ bundle
def _reference(config: TrainConfig, model: CalibratedModel, splits: Splits, raw: Splits
               ) -> dict[str, np.ndarray]:
    """The raw test rows (the graph's inputs; NaN / "" = missing) and the native model's answers; the
    sorted digests of every row the model or its calibrator saw (``lockgate analyze`` warns on them)."""
    test, n = raw.test, min(config.reference_rows, len(raw.test.y))
    seen = [s for s in (raw.train, raw.validation, raw.calibration) if s is not None]
    reference: dict[str, np.ndarray] = {
        "inputs": test.X[:n].astype(np.float32),
        "probabilities": model.predict_proba(splits.test.X[:n]),
        "holdout_inputs": test.X.astype(np.float32),
        "holdout_labels": test.y.astype(np.int64),
        "seen_row_digests": np.unique(np.concatenate([feature_digests(s.X, s.C) for s in seen])),
    }
    if test.C is not None and test.C.shape[1]:
        reference["categorical_inputs"] = test.C[:n].astype(str)
        reference["holdout_categorical_inputs"] = test.C.astype(str)
    if test.segments is not None:
        reference["holdout_segments"] = test.segments.astype(str)
    return reference


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@contextmanager
def bundle_directory(config: TrainConfig) -> Iterator[Path]:
    """A temp directory that becomes ``config.bundle_dir`` when the block succeeds (directory 0755, files
    0644) and vanishes when it fails; write errors become :class:`TrainingError`."""
    target = config.bundle_dir
    try:
        with atomic_directory(target, overwrite=config.overwrite) as tmp:
            yield tmp
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


def _write_bundle(config: TrainConfig, card: ModelCard, onnx_bytes: bytes, reference: dict[str, np.ndarray],
                  model: CalibratedModel, ds: Dataset, splits: Splits,
                  search_files: dict[str, bytes] | None = None) -> None:
    test = splits.test
    estimator = model.pairs[0].estimator
    with bundle_directory(config) as tmp:
        (tmp / MODEL_FILE).write_bytes(onnx_bytes)
        (tmp / REFERENCE_FILE).write_bytes(npz_bytes(reference))
        plot_reliability(
            tmp / RELIABILITY_FILE, test.y, model.uncalibrated_proba(test.X), model.predict_proba(test.X),
            ds.classes, config.ece_bins,
            f"{config.name}:{config.version} {card.family}, calibration {card.calibration.method} "
            "(test split)",
        )
        files = dict(search_files or {})
        files.update(estimator.card_files() if hasattr(estimator, "card_files") else {})
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        write_json_atomic(tmp / CARD_FILE, card)
