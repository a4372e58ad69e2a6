"""``lockgate train --model mlp --target COL --target2 COL2``: train, calibrate and export a two-head MLP.

load the CSV (numeric columns; COL2 left out of the features) -> disjoint splits (a calibration split
always: each classification head gets its own calibrator) -> gamma tuned on validation (every candidate
fitted on train; selection score = the mean of head 1's macro F1 and head 2's score: macro F1, or
``1 - MAE / (high - low)`` for a regression) -> calibrators (temperature scaling on the logits, or none)
-> ONE ONNX graph, one output per head (:mod:`training.deep.multi_output_export`), parity-checked ->
the card (``card.outputs``) -> the bundle, written atomically. Head 1 is the card's task, so the
bundle reads like any other lockgate bundle; head 2's metrics and calibration are in ``card.outputs`` and
``card.details['multi_output']``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from cascade_registry.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    RELIABILITY_FILE,
    CalibrationInfo,
    ExportInfo,
    InputPolicy,
    ModelCard,
    ModelRef,
    OutputSpec,
    RuntimeInfo,
    SearchInfo,
    TrialRecord,
    write_json_atomic,
)
from training.calibration import Calibrator, fit_calibrator
from training.card import (
    dataset_info,
    describe_features,
    describe_infrastructure,
    estimate_cost,
    max_abs_value,
)
from training.config import TrainConfig
from training.datasets import Dataset, TableOverrides, load_dataset
from training.deep.family import DEFAULTS, make_mlp
from training.deep.multi_output import MultiOutputMLP
from training.deep.multi_output_export import export_multi_output, head_outputs
from training.errors import ConfigError, DataError, ExportError, OutputExistsError
from training.graph import imported_opsets
from training.metrics import calibration_metrics, report_metrics
from training.reliability import plot_reliability
from training.splits import Split, Splits, feature_digests, split_dataset
from training.trainer import bundle_directory, npz_bytes

__all__ = ["GAMMAS", "SecondTarget", "train_multi_output"]

#: gamma candidates tuned on validation (``--gamma`` fixes one)
GAMMAS = (0.25, 0.5, 0.75)
#: auto: a numeric second target with more distinct values than this is a regression
REGRESSION_MIN_VALUES = 10
MAX_CLASSES2 = 100


@dataclass(frozen=True)
class SecondTarget:
    name: str
    kind: str  # classification | regression
    values: np.ndarray  # float64 [n]: class indices or values
    classes: list[str]
    range: tuple[float, float]

    def of(self, split: Split) -> np.ndarray:
        return self.values[split.index]


def train_multi_output(config: TrainConfig) -> Path:
    """Train the two-head model of ``config`` (``target2`` set) and return its bundle directory."""
    with threadpool_limits(limits=config.threads):
        return _train(config)


def _train(config: TrainConfig) -> Path:
    started, cpu_started = time.perf_counter(), time.process_time()
    if config.bundle_dir.exists() and not config.overwrite:
        raise OutputExistsError(f"output directory {config.bundle_dir} already exists",
                                "pass --overwrite, or another --version/--out")
    method = _method(config)
    ds, second = _load(config)
    splits = split_dataset(ds, config.seed, config.validation_fraction, config.calibration_fraction,
                           config.test_fraction)
    assert splits.calibration is not None
    search, model = _tune_gamma(config, splits, second)
    t_cal = time.perf_counter()
    cal1 = _calibrator(method, model.decision_scores(splits.calibration.X), splits.calibration.y,
                       len(ds.classes))
    cal2 = None if second.kind == "regression" else _calibrator(
        method, model.head2_scores(splits.calibration.X), second.of(splits.calibration).astype(int),
        len(second.classes))
    cal_seconds, t_export = time.perf_counter() - t_cal, time.perf_counter()
    doc = (f"lockgate {config.name}:{config.version}: mlp with two heads ({ds.target}, {second.name}), "
           f"{method} calibration. input float32 [N,F]; label/probabilities: {ds.target}; "
           + ", ".join(head_outputs(second.name, second.kind)) + f": {second.name}.")
    onnx_model = export_multi_output(model, second.name, cal1, cal2, doc, {
        "lockgate.name": config.name, "lockgate.version": str(config.version), "lockgate.family": "mlp",
        "lockgate.calibration": method, "lockgate.classes": "\x1f".join(ds.classes),
        "lockgate.features": "\x1f".join(ds.feature_names), "lockgate.outputs": f"{ds.target},{second.name}"})
    onnx_bytes = onnx_model.SerializeToString(deterministic=True)
    rows, diff = _parity(config, onnx_bytes, model, cal1, cal2, second, splits)
    export = ExportInfo(onnx_sha256=_sha256(onnx_bytes), opset=imported_opsets(onnx_bytes),
                        parity_max_abs_diff=diff, parity_rows=rows, parity_limit=config.parity_limit,
                        precision="float32 network (torch.onnx.export); heads calibrated in float64",
                        converter="torch.onnx.export (TorchScript exporter, dynamo=False)")
    runtime = RuntimeInfo(total_seconds=0.0, search_seconds=round(search.seconds, 4),
                          per_candidate_seconds=[c.fit_seconds for c in search.info.candidates],
                          calibration_seconds=round(cal_seconds, 4),
                          export_seconds=round(time.perf_counter() - t_export, 4))
    card = _card(config, ds, splits, second, model, (cal1, cal2), search.info, export, runtime, method,
                 started, cpu_started)
    _write(config, card, onnx_bytes, model, cal1, ds, splits)
    return config.bundle_dir


# ------------------------------------------------------------------------------------------ data
def _load(config: TrainConfig) -> tuple[Dataset, SecondTarget]:
    assert config.target2 is not None
    if config.is_builtin_data:
        raise ConfigError("--target2 reads two columns of a CSV file", "pass --data PATH.csv --target COL")
    try:
        header = list(pd.read_csv(config.data, nrows=0).columns)
    except (OSError, ValueError):
        header = []  # load_dataset names the problem with the file
    if header and config.target2 not in header:
        raise DataError(f"--target2 {config.target2!r} is not a column of {Path(config.data).name}",
                        f"name a column of its header ({', '.join(map(str, header[:20]))})")
    ds = load_dataset(config.data, config.seed, config.target, config.segment, "error",
                      TableOverrides(config.categorical, config.numeric, (*config.drop, config.target2)))
    if ds.is_mixed:
        raise DataError("a multi-output model takes numeric feature columns only",
                        "drop or encode the categorical columns (--drop COL,...)")
    column = pd.read_csv(config.data, usecols=[config.target2])[config.target2]
    if len(column) != len(ds.y) or column.isna().any():
        raise DataError(f"--target2 {config.target2!r} has missing values (or rows the table dropped)",
                        "fill or drop those rows first")
    return ds, _second(config, column)


def _second(config: TrainConfig, column: pd.Series) -> SecondTarget:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    kind = config.target2_kind
    if kind == "auto":
        kind = "regression" if numeric and column.nunique() > REGRESSION_MIN_VALUES else "classification"
    name = str(config.target2)
    if kind == "regression":
        if not numeric:
            raise DataError(f"--target2 {name!r} is not numeric, so it cannot be a regression target",
                            "pass --target2-kind classification")
        values = column.to_numpy(np.float64)
        if not np.isfinite(values).all() or values.min() == values.max():
            raise DataError(f"--target2 {name!r} must be finite and not constant", "check the column")
        return SecondTarget(name, kind, values, [], (float(values.min()), float(values.max())))
    classes, idx = np.unique(column.astype(str).to_numpy(), return_inverse=True)
    if not 2 <= len(classes) <= MAX_CLASSES2:
        raise DataError(f"--target2 {name!r} has {len(classes)} classes", f"2..{MAX_CLASSES2} are allowed")
    return SecondTarget(name, kind, idx.astype(np.float64), [str(c) for c in classes], (0.0, 0.0))


# ------------------------------------------------------------------------------------------ search
@dataclass(frozen=True)
class _Search:
    info: SearchInfo
    seconds: float


def _estimator(config: TrainConfig, second: SecondTarget, gamma: float) -> MultiOutputMLP:
    mlp = make_mlp(dict(DEFAULTS), config.seed).get_params()
    return MultiOutputMLP(gamma=gamma, kind2=second.kind, n_classes2=max(len(second.classes), 2),
                          range2=second.range if second.kind == "regression" else (0.0, 1.0), **mlp)


def head2_score(second: SecondTarget, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro F1 (classification) or ``1 - MAE / (high - low)`` (regression): higher is better, <= 1."""
    if second.kind == "classification":
        return float(f1_score(truth.astype(int), predicted.astype(int), average="macro", zero_division=0))
    low, high = second.range
    return float(1.0 - np.mean(np.abs(truth - predicted)) / (high - low))


def _tune_gamma(config: TrainConfig, splits: Splits, second: SecondTarget) -> tuple[_Search, MultiOutputMLP]:
    start, train, val = time.perf_counter(), splits.train, splits.validation
    gammas = (config.gamma,) if config.gamma is not None else GAMMAS
    best: tuple[float, MultiOutputMLP] | None = None
    records = []
    for gamma in gammas:
        t0 = time.perf_counter()
        model = _estimator(config, second, gamma).fit(train.X, train.y, second.of(train))
        s1 = float(f1_score(val.y, model.predict(val.X), average="macro", zero_division=0))
        s2 = head2_score(second, second.of(val), model.predict_head2(val.X))
        value = (s1 + s2) / 2
        records.append(TrialRecord(params={"gamma": gamma}, score=round(value, 6),
                                   fit_seconds=round(time.perf_counter() - t0, 6)))
        if best is None or value > best[0]:
            best = (value, model)
    assert best is not None
    winner = int(np.argmax([r.score for r in records]))
    info = SearchInfo(
        method=f"gamma of the combined cost gamma*C1 + (1-gamma)*C2 tuned on validation "
        f"(seed={config.seed}); the network at the mlp family defaults",
        metric="mean of head scores",
        metric_definition=f"(macro F1 of {config.target} + head-2 score) / 2; head-2 score = macro F1 "
        "(classification) or 1 - MAE / (high - low) (regression)",
        selection="fit each gamma on the train split, keep the highest validation score (ties: the "
        f"earlier); winner: gamma {gammas[winner]}; not refitted",
        trials=len(records), ranges={"gamma": list(gammas)}, defaults=dict(sorted(DEFAULTS.items())),
        best_params={"gamma": gammas[winner]}, best_value=best[0], candidates=records,
    )
    return _Search(info, time.perf_counter() - start), best[1]


# ------------------------------------------------------------------------------------------ calibration
def _method(config: TrainConfig) -> str:
    if config.calibration in ("auto", "temperature"):
        return "temperature"
    if config.calibration == "none":
        return "none"
    raise ConfigError(f"--calibration {config.calibration}: a multi-output model calibrates each head by "
                      "temperature scaling of its logits", "use --calibration temperature, auto or none")


def _response(scores: np.ndarray, n_classes: int) -> np.ndarray:
    return scores[:, 1:2] - scores[:, :1] if n_classes == 2 else scores


def _calibrator(method: str, scores: np.ndarray, y: np.ndarray, n_classes: int) -> Calibrator:
    return fit_calibrator(method, _response(scores, n_classes), y, n_classes, "margin")


def _proba(cal: Calibrator, scores: np.ndarray) -> np.ndarray:
    return cal.predict_proba(_response(scores, cal.n_classes))


def _parity(config: TrainConfig, onnx_bytes: bytes, model: MultiOutputMLP, cal1: Calibrator,
            cal2: Calibrator | None, second: SecondTarget, splits: Splits) -> tuple[int, float]:
    """Max |ONNX - native| over every head (a regression's difference relative to its range)."""
    X = np.concatenate([s.X for s in splits if s.name != "train"] + [splits.train.X[:256]]).astype(np.float32)
    outs = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).run(None, {"input": X})
    diffs = [np.abs(outs[1] - _proba(cal1, model.decision_scores(X))).max()]
    if cal2 is not None:
        diffs.append(np.abs(outs[3] - _proba(cal2, model.head2_scores(X))).max())
    else:
        low, high = second.range
        diffs.append(np.abs(outs[2] - model.predict_head2(X)).max() / (high - low))
    diff = float(max(diffs))
    if not diff <= config.parity_limit:
        raise ExportError(f"the exported multi-output graph differs from the native model by {diff:.3g} "
                          f"(limit {config.parity_limit:g}); the bundle was not written", "report this case")
    return len(X), diff


# ------------------------------------------------------------------------------------------ card
def _head2_spec(second: SecondTarget, model: MultiOutputMLP, cal2: Calibrator | None, test: Split,
                method: str, bins: int) -> OutputSpec:
    truth, predicted = second.of(test), model.predict_head2(test.X)
    metrics = {"score": round(head2_score(second, truth, predicted), 6)}
    if second.kind == "classification":
        assert cal2 is not None
        p = _proba(cal2, model.head2_scores(test.X))
        cm = calibration_metrics(truth.astype(int), p, bins)
        metrics.update(accuracy=float(np.mean(predicted == truth)), ece=cm.ece, brier=cm.brier)
    else:
        err = predicted - truth
        metrics.update(mae=float(np.mean(np.abs(err))), rmse=float(np.sqrt(np.mean(err**2))),
                       r2=float(1 - np.sum(err**2) / np.sum((truth - truth.mean()) ** 2)))
    return OutputSpec(name=second.name, kind=second.kind, classes=second.classes,
                      range=list(second.range) if second.kind == "regression" else None,
                      onnx_outputs=head_outputs(second.name, second.kind),
                      calibration=method if second.kind == "classification" else None,
                      metrics={k: round(float(v), 6) for k, v in metrics.items()})


def _card(config: TrainConfig, ds: Dataset, splits: Splits, second: SecondTarget, model: MultiOutputMLP,
          cals: tuple[Calibrator, Calibrator | None], search: SearchInfo, export: ExportInfo,
          runtime: RuntimeInfo, method: str, started: float, cpu_started: float) -> ModelCard:
    test, bins = splits.test, config.ece_bins
    before = model.predict_proba(test.X)
    after = _proba(cals[0], model.decision_scores(test.X))
    policy = InputPolicy(max_abs_value=max_abs_value(splits.train.X))
    head1 = OutputSpec(name=str(ds.target), kind="classification", classes=ds.classes,
                       onnx_outputs=["label", "probabilities"], calibration=method,
                       metrics={"f1_macro": round(float(f1_score(test.y, after.argmax(1),
                                                                 average="macro")), 6)})
    head2 = _head2_spec(second, model, cals[1], test, method, bins)
    outs = ", ".join(head_outputs(second.name, second.kind))
    return ModelCard(
        ref=ModelRef(name=config.name, version=config.version), family="mlp", classes=ds.classes,
        task="binary" if len(ds.classes) == 2 else "multiclass",
        features=describe_features(ds.feature_names, splits.train.X), input_policy=policy,
        dataset=dataset_info(ds, splits, ds.sha256), hyperparameters={**search.best_params, "heads": 2},
        search=search, metrics=report_metrics(test.y, after, ds.classes, bins, test.segments),
        calibration=CalibrationInfo(
            method=method, requested=config.calibration, holdout_rows=len(test.y),
            reason=f"each classification head: {method} on its logits, fitted on the calibration split",
            before=calibration_metrics(test.y, before, bins, ds.classes),
            after=calibration_metrics(test.y, after, bins, ds.classes),
            fit_rows=len(splits.calibration.y) if splits.calibration is not None else None,
            params=cals[0].params()),
        export=export, infrastructure=describe_infrastructure(),
        runtime=runtime.model_copy(update={"total_seconds": round(time.perf_counter() - started, 4)}),
        cost=estimate_cost(time.process_time() - cpu_started, config.price_per_core_hour), seed=config.seed,
        outputs=[head1, head2], train_options=config.recorded_options, created_at=datetime.now(UTC),
        how_to_consume=f"POST /predict with the {len(ds.feature_names)} features; the answer's label and "
        f"probabilities are {ds.target} (calibrated), and its 'outputs' carry {second.name} ({outs}).",
        details={"multi_output": {"gamma": model.gamma, "heads": [head1.name, head2.name],
                                  "second_head_calibration": None if cals[1] is None else cals[1].params()},
                 **model.card_details()},
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(config: TrainConfig, card: ModelCard, onnx_bytes: bytes, model: MultiOutputMLP, cal1: Calibrator,
           ds: Dataset, splits: Splits) -> None:
    test, n = splits.test, min(config.reference_rows, len(splits.test.y))
    seen = [s for s in (splits.train, splits.validation, splits.calibration) if s is not None]
    reference = {
        "inputs": test.X[:n].astype(np.float32),
        "probabilities": _proba(cal1, model.decision_scores(test.X[:n])),
        "holdout_inputs": test.X.astype(np.float32), "holdout_labels": test.y.astype(np.int64),
        "seen_row_digests": np.unique(np.concatenate([feature_digests(s.X, s.C) for s in seen])),
    }
    with bundle_directory(config) as tmp:
        (tmp / MODEL_FILE).write_bytes(onnx_bytes)
        (tmp / REFERENCE_FILE).write_bytes(npz_bytes(reference))
        plot_reliability(tmp / RELIABILITY_FILE, test.y, model.predict_proba(test.X),
                         _proba(cal1, model.decision_scores(test.X)), ds.classes, config.ece_bins,
                         f"{config.name}:{config.version} mlp ({ds.target} head), {card.calibration.method}")
        for fname, data in model.card_files().items():
            (tmp / fname).write_bytes(data)
        write_json_atomic(tmp / CARD_FILE, card)
