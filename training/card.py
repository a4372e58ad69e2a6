"""Assemble the :class:`ModelCard` of one run: dataset, search, calibration (before/after, per class,
cross-fit and refit, warnings), metrics, export, infrastructure, runtime, cost, how to consume it."""

from __future__ import annotations

import hashlib
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from cascade_registry.artifacts import (
    CalibrationInfo,
    CalibrationMetrics,
    CostInfo,
    DatasetInfo,
    ExportInfo,
    FeatureSpec,
    InfrastructureInfo,
    InputPolicy,
    ModelCard,
    ModelRef,
    RuntimeInfo,
)
from training.calibration import logit_matrix, softmax
from training.config import TrainConfig
from training.crossfit import CalibrationFit
from training.datasets import Dataset
from training.families import Family
from training.graph import BaseGraph, imported_opsets
from training.input_sets import inputs_text, with_unknown_policy
from training.metrics import calibration_metrics, report_metrics
from training.preprocessing import Preprocessor
from training.response import response_method
from training.search import SearchResult
from training.splits import Splits
from training.tables import float32_value
from training.upstream import Upstream

__all__ = ["RunFacts", "build_card", "consume_text", "dataset_info", "describe_features",
           "describe_infrastructure", "estimate_cost", "max_abs_value"]

LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "scipy", "pandas", "pydantic")


def describe_infrastructure() -> InfrastructureInfo:
    """CPU model, cores, RAM, OS, Python and library versions of this machine."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return InfrastructureInfo(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 1,
        ram_gb=round(_ram_bytes() / 2**30, 2),
        os=platform.platform(),
        python=platform.python_version(),
        libraries=versions,
        device="cpu",
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value and not value.isdigit():
                    return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _ram_bytes() -> float:
    try:
        return float(psutil.virtual_memory().total)
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def estimate_cost(cpu_seconds: float, price_per_core_hour: float) -> CostInfo:
    """Core-hours = CPU time of this process (all threads) / 3600, priced per core-hour."""
    core_hours = cpu_seconds / 3600.0
    return CostInfo(
        price_per_core_hour=price_per_core_hour,
        core_hours=core_hours,
        estimated_cost=core_hours * price_per_core_hour,
        currency="USD",
    )


def describe_features(names: list[str], X: np.ndarray) -> list[FeatureSpec]:
    """Observed ranges on the training split (the serving edge warns far outside them)."""
    return [
        FeatureSpec(
            name=name,
            dtype="float32",
            min=float32_value(X[:, j].min()),
            max=float32_value(X[:, j].max()),
            mean=float32_value(X[:, j].mean()),
            std=float32_value(X[:, j].std()),
        )
        for j, name in enumerate(names)
    ]


def consume_text(
    name: str,
    version: int,
    classes: list[str],
    n_features: int,
    method: str,
    threshold: float | None,
    policy: InputPolicy,
    pre: Preprocessor | None = None,
) -> str:
    if pre is not None and not pre.identity:
        return _consume_table_text(name, version, classes, method, threshold, pre)
    decision = (
        f"For a yes/no decision on class {classes[1]!r}, compare probabilities[:, 1] with the recommended "
        f"threshold {threshold:.2f} (chosen to maximize F1 on the validation split) rather than using the "
        "label, which is the argmax (threshold 0.5)."
        if threshold is not None
        else "The label is the most probable class; use the probabilities when the cost of errors differs "
        "between classes."
    )
    calibration = "The probabilities are calibrated" + (
        f" ({method}, fitted on responses of rows the model never saw)"
        if method != "none"
        else " only as well as the model itself (no calibrator was fitted)"
    )
    return (
        f"Model {name}:{version} takes one float32 row of {n_features} features per example, in the order "
        f"of card.features, as the ONNX input 'input' [N, {n_features}]. It returns 'label' (int64 [N], an "
        f"index into card.classes = {classes}) and 'probabilities' (float32 [N, {len(classes)}], rows sum "
        f"to 1). {calibration}: a predicted 0.8 means about 80% of such rows belong to that class. "
        f"{decision} Inputs must be finite (NaN/inf are refused) and at most {policy.max_abs_value:.3g} in "
        f"magnitude, at most {policy.max_batch_rows} rows per request; values far outside the observed "
        "training ranges in card.features produce a warning, "
        "and predictions there are extrapolations. Check card.metrics for the quality you can expect, "
        "per class and per segment."
    )


def _consume_table_text(name: str, version: int, classes: list[str], method: str, threshold: float | None,
                        pre: Preprocessor) -> str:
    numeric = [n.name for n in pre.numeric]
    cats = [c.name for c in pre.categorical]
    threshold_text = (f" For a yes/no decision on class {classes[1]!r}, compare probabilities[:, 1] with "
                      f"{threshold:.2f}." if threshold is not None else "")
    return (
        f"Model {name}:{version} takes raw table rows by column name (card.features: name, kind, levels, "
        f"missing policy). ONNX inputs: 'input' float32 [N, {len(numeric)}] = {numeric} (missing = NaN)"
        + (f" and 'categorical' string [N, {len(cats)}] = {cats} (missing = \"\", booleans as \"true\"/"
           "\"false\")" if cats else "")
        + ". The graph imputes (training medians, missing indicators) and encodes (card.preprocessing) "
        "itself; send raw values. It returns 'label' (int64 [N], an index into card.classes = "
        f"{classes}) and "
        f"'probabilities' (float32 [N, {len(classes)}]); calibration: {method}.{threshold_text} An unseen "
        "level follows each feature's 'unknown' policy. Check card.metrics for the quality you can expect."
    )


# ------------------------------------------------------------------------------------------ the card
@dataclass(frozen=True)
class RunFacts:
    """Everything one training run produced that the card reports."""

    config: TrainConfig
    family: Family
    ds: Dataset
    splits: Splits
    search: SearchResult
    fit: CalibrationFit
    onnx_bytes: bytes
    base: BaseGraph
    parity_rows: int
    parity_diff: float
    score_errors: list[tuple[float, float]]
    merged_knots: int
    threshold: float | None
    export_seconds: float
    started: float
    cpu_started: float
    pre: Preprocessor | None = None
    upstreams: tuple[Upstream, ...] = ()
    data_sha256: str | None = None  # the table as given (before upstream features); None: ds.sha256


def build_card(f: RunFacts) -> ModelCard:
    cfg, ds, test = f.config, f.ds, f.splits.test
    after_p = f.fit.model.predict_proba(test.X)
    policy = InputPolicy(max_abs_value=max_abs_value(f.splits.train.X))
    estimator = f.fit.model.pairs[0].estimator
    return ModelCard(
        ref=ModelRef(name=cfg.name, version=cfg.version),
        task="binary" if len(ds.classes) == 2 else "multiclass",
        family=f.family.name,
        classes=ds.classes,
        features=_mark_upstream(f.pre.features() if f.pre is not None
                                else describe_features(ds.feature_names, f.splits.train.X), f.upstreams),
        inputs=with_unknown_policy(ds.inputs, cfg.unknown_category),
        preprocessing=None if f.pre is None or f.pre.identity else _preprocessing(f),
        input_policy=policy,
        dataset=dataset_info(ds, f.splits, f.data_sha256 or ds.sha256),
        hyperparameters=f.search.info.best_params,
        search=f.search.info,
        calibration=calibration_info(f, after_p),
        metrics=report_metrics(test.y, after_p, ds.classes, cfg.ece_bins, test.segments),
        older_metrics=None if f.splits.older is None else report_metrics(
            f.splits.older.y, f.fit.model.predict_proba(f.splits.older.X), ds.classes, cfg.ece_bins,
            f.splits.older.segments),
        recommended_threshold=f.threshold,
        export=_export_info(f),
        infrastructure=describe_infrastructure(),
        runtime=RuntimeInfo(
            total_seconds=round(time.perf_counter() - f.started, 4),
            search_seconds=round(f.search.seconds, 4),
            per_candidate_seconds=f.search.per_candidate_seconds,
            calibration_seconds=round(f.fit.seconds, 4),
            export_seconds=round(f.export_seconds, 4),
        ),
        cost=estimate_cost(time.process_time() - f.cpu_started, cfg.price_per_core_hour),
        seed=cfg.seed,
        upstream=[u.pin() for u in f.upstreams],
        parent=estimator.card_parent() if hasattr(estimator, "card_parent") else None,
        train_options=cfg.recorded_options,
        how_to_consume=consume_text(cfg.name, cfg.version, ds.classes, len(ds.feature_names), f.fit.method,
                                    f.threshold, policy, f.pre) + _cascade_text(f.upstreams)
        + inputs_text(tuple(with_unknown_policy(ds.inputs, cfg.unknown_category))),
        created_at=datetime.now(UTC),
        details=_details(f, estimator),
    )


def _preprocessing(f: RunFacts) -> dict[str, Any]:
    pre = f.pre
    assert pre is not None
    return {
        "missing": f.config.missing_policy,
        "unknown_category": f.config.unknown_category,
        "onehot_max_levels": pre.onehot_max,
        "rare_min_rows": f.config.rare_min,
        "fitted_on": "train split only",
        "encodings": pre.encodings(),
        "missing_indicators": [n.name for n in pre.numeric if n.indicator],
        "design_width": pre.width,
        "inputs": {"input": f"float32 [N, {len(pre.numeric)}]"}
        | ({"categorical": f"string [N, {len(pre.categorical)}]"} if pre.categorical else {}),
    }


def _reason(f: RunFacts) -> str:
    fit = f.fit
    where = f"{fit.fitted_on}, {fit.fit_rows} rows"
    if fit.choice is not None:
        reason = fit.choice.describe() + f" ({where})"
    elif fit.method == "none":
        reason = "calibration disabled on request: probabilities are the model's own"
    else:
        reason = f"{fit.method} requested; fitted on {where}"
    temps = _temperatures(fit)
    if temps:
        T = float(np.median(temps))
        reason += f"; T = {T:.4g}" + (" (> 1: the model was over-confident)" if T > 1 else
                                      " (< 1: the model was under-confident)" if T < 1 else "")
    if f.merged_knots:
        reason += (f"; {f.merged_knots} isotonic knots closer than the export's rounding allows were merged "
                   "into narrow jumps (see docs/training.md)")
    return reason


def calibration_warnings(f: RunFacts, before: CalibrationMetrics, after: CalibrationMetrics) -> list[str]:
    """Calibrator fits at a bound, and calibration that made the unseen test split worse."""
    out: list[str] = []
    for pair in f.fit.model.pairs:
        out += [w for w in pair.calibrator.warnings() if w not in out]
    if f.fit.method == "none":
        return out
    pairs = (("Brier score", before.brier, after.brier), ("log loss", before.log_loss, after.log_loss))
    for name, b, a in pairs:
        if a > b + 1e-12:
            out.append(f"calibration ({f.fit.method}) worsened the {name} on the unseen test split "
                       f"({b:.4f} -> {a:.4f}); consider --calibration auto or none")
    return out


def calibration_info(f: RunFacts, after_p: np.ndarray) -> CalibrationInfo:
    cfg, test = f.config, f.splits.test
    before = calibration_metrics(test.y, f.fit.model.uncalibrated_proba(test.X), cfg.ece_bins, f.ds.classes)
    after = calibration_metrics(test.y, after_p, cfg.ece_bins, f.ds.classes)
    choice = f.fit.choice
    return CalibrationInfo(
        method=f.fit.method,  # type: ignore[arg-type]
        requested=f.fit.requested,
        reason=_reason(f),
        holdout_rows=len(test.y),
        before=before,
        after=after,
        fitted_on=f.fit.fitted_on,
        fit_rows=f.fit.fit_rows,
        cross_fit=f.fit.cross_fit,
        refit=f.fit.refit,
        candidates={} if choice is None else {
            m: {"brier": choice.brier[m], "log_loss": choice.log_loss[m]} for m in choice.brier
        },
        params=_jsonable_params(f.fit),
        warnings=calibration_warnings(f, before, after),
    )


def _jsonable_params(fit: CalibrationFit) -> dict[str, Any]:
    params = [p.calibrator.params() for p in fit.model.pairs]
    return params[0] if len(params) == 1 else {"pairs": params}


def _temperatures(fit: CalibrationFit) -> list[float]:
    cals = [p.calibrator for p in fit.model.pairs]
    return [float(c.temperature_) for c in cals if hasattr(c, "temperature_")]


def _temperature_details(f: RunFacts) -> dict[str, Any]:
    """The fitted T and what it did on the rows it was fitted on (log loss can only go down there)."""
    temps = _temperatures(f.fit)
    if not temps:
        return {}
    y = f.fit.fit_y
    raw = softmax(logit_matrix(f.fit.fit_R, len(f.ds.classes), f.fit.kind))  # T = 1
    bins = f.config.ece_bins
    return {
        "temperature": float(np.median(temps)),
        "temperatures": temps,
        "temperature_fit": {
            "split": "calibration" if f.fit.cross_fit is None else "out-of-fold",
            "rows": len(y),
            "objective": "log loss of softmax(logits / T), T in [exp(-4), exp(4)]",
            "before": calibration_metrics(y, raw, bins).model_dump(),
            "after": calibration_metrics(y, f.fit.fit_proba, bins).model_dump(),
        },
    }


def _details(f: RunFacts, estimator: Any) -> dict[str, Any]:
    cfg = f.config
    method = f.fit.method
    return {
        "family_description": f.family.description,
        "calibration_input": "none" if method == "none" else response_method(estimator),
        **_temperature_details(f),
        "export_score_error": list(f.score_errors[0]),
        "isotonic_knots_merged": f.merged_knots,
        "split_fractions": {
            "validation": cfg.validation_fraction,
            "calibration": cfg.effective_calibration_fraction,
            "test": cfg.test_fraction,
        },
        "calibration_cv": cfg.calibration_cv,
        "held_out_rows_identical_to_train": f.splits.held_out_identical_to_train,
        "reference_rows": int(min(cfg.reference_rows, len(f.splits.test.y))),
        "metrics_split": "test",
        **(estimator.card_details() if hasattr(estimator, "card_details") else {}),
        **f.search.details,
    }


def _export_info(f: RunFacts) -> ExportInfo:
    pairs = len(f.fit.model.pairs)
    return ExportInfo(
        onnx_sha256=hashlib.sha256(f.onnx_bytes).hexdigest(),
        opset=imported_opsets(f.onnx_bytes),
        parity_max_abs_diff=f.parity_diff,
        parity_rows=f.parity_rows,
        parity_limit=f.config.parity_limit,
        precision=f.base.precision,
        converter=f"{f.base.converter} (base model{' x ' + str(pairs) if pairs > 1 else ''}) + lockgate ONNX "
        "calibrator/renormalization",
    )


def _cascade_text(upstreams: tuple[Upstream, ...]) -> str:
    if not upstreams:
        return ""
    fed = "; ".join(f"{', '.join(u.features)} from {u.ref} ({u.output}, its inputs {', '.join(u.inputs)})"
                    for u in upstreams)
    return (f" A cascade: the features {fed} are the outputs of the pinned upstream models (card.upstream). "
            "Through the gateway send only the raw columns: it runs the pinned upstream versions first and "
            "feeds their outputs in. Calling model.onnx directly, run each upstream's graph on the same "
            "row and pass its outputs under those names.")


def _mark_upstream(features: list[FeatureSpec], upstreams: tuple[Upstream, ...]) -> list[FeatureSpec]:
    """Each upstream-derived feature names the model producing it (``FeatureSpec.upstream``)."""
    producer = {name: u.ref.name for u in upstreams for name in u.features}
    return [s.model_copy(update={"upstream": producer[s.name]}) if s.name in producer else s
            for s in features]


def dataset_info(ds: Dataset, splits: Splits, sha256: str) -> DatasetInfo:
    return DatasetInfo(
        name=ds.name,
        description=ds.description + "; features rounded to float32 (the exported model's input type)",
        source=ds.source,
        rows=len(ds.y),
        n_features=len(ds.feature_names),
        sha256=sha256,
        target=ds.target,
        segment=ds.segment_name,
        splits={s.name: s.info(ds.classes) for s in splits},
        splits_disjoint=splits.disjoint,
        missing_values=ds.missing_values,
        time_column=splits.by_time,
    )


def max_abs_value(train_X: np.ndarray) -> float:
    """The serving edge refuses magnitudes a million times beyond anything seen in training.

    Such values are data errors, not observations, and they overflow float32 inside some graphs (an MLP
    turns +-1e38 into NaN); values far outside the training range but below this bound are still served,
    with a warning.
    """
    observed = float(np.abs(train_X).max(initial=1.0))
    return float(min(3.0e38, 1e6 * max(1.0, observed)))
