"""The bundle schema: what training writes, safety judges, the registry records and serving loads.

A bundle is a directory ``<name>-<version>/`` holding

- ``model.onnx``    one graph: preprocessing + model + calibrator. Input ``input`` float32 ``[N, F]``;
                    outputs ``label`` int64 ``[N]`` (index into ``card.classes``) and
                    ``probabilities`` float32 ``[N, C]`` (calibrated; rows sum to 1).
- ``card.json``     the :class:`ModelCard` (everything needed to reproduce and to consume the model).
- ``reference.npz`` inputs with the native model's probabilities (parity) and the held-out test split
                    (quality is recomputed by the gate, never copied from the card). Keys:
                    ``inputs`` float32 [n, F], ``probabilities`` float64 [n, C],
                    ``holdout_inputs`` float32 [m, F], ``holdout_labels`` int64 [m],
                    optional ``holdout_segments`` str [m], ``seen_row_digests`` uint64 [k] (sorted digests
                    of the training, validation and calibration rows' features: ``lockgate analyze``).
                    In a cascade (``card.upstream``) the rows hold
                    the raw columns too (every upstream input is a raw feature), so the upstream outputs
                    can be recomputed from them; the upstream-derived columns hold the values the pinned
                    upstream gave at training time.
- ``reliability.png`` reliability diagram(s), before vs after calibration.
- ``weights.pt``    deep families only: the network's weights (a torch state_dict plus its architecture),
                    what ``lockgate train --init-from`` starts from; read with
                    ``torch.load(weights_only=True)``, at most :data:`MAX_WEIGHTS_BYTES`
                    (``training.deep.weights``).
- ``gate.json``     written by ``lockgate check``: the signed attestation (a DSSE envelope holding an
                    in-toto statement, :mod:`cascade_registry.attestation`) over the manifest of every
                    other file; :meth:`ModelBundle.gate_report` gives its unverified :class:`GateReport` view.

This module is stdlib + pydantic only; it is the bottom of the import graph.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cascade_registry.manifest import load_json_bounded

__all__ = [
    "CARD_FILE",
    "GATE_FILE",
    "MODEL_FILE",
    "MAX_WEIGHTS_BYTES",
    "NAME_PATTERN",
    "OutputSpec",
    "ParentRef",
    "REFERENCE_FILE",
    "RELIABILITY_FILE",
    "SCHEMA_VERSION",
    "BundleError",
    "CalibrationInfo",
    "CALIBRATION_METHODS",
    "CalibrationMetrics",
    "CrossFitInfo",
    "RefitInfo",
    "CheckResult",
    "CostInfo",
    "DatasetInfo",
    "ExportInfo",
    "FeatureSpec",
    "GateReport",
    "MAX_CARD_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_SEQUENCE_LENGTH",
    "PAD_ID",
    "UNKNOWN_ID",
    "InfrastructureInfo",
    "InputPolicy",
    "InputSpec",
    "InvalidBundleError",
    "ModelBundle",
    "ModelCard",
    "ModelRef",
    "RuntimeInfo",
    "SearchInfo",
    "SplitInfo",
    "TestMetrics",
    "TrialRecord",
    "UpstreamRef",
    "WEIGHTS_FILE",
    "atomic_directory",
    "upstream_feature_names",
    "published_mode",
    "sha256_file",
    "write_json_atomic",
    "write_text_atomic",
]

SCHEMA_VERSION = "1"
MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
REFERENCE_FILE = "reference.npz"
RELIABILITY_FILE = "reliability.png"
GATE_FILE = "gate.json"
WEIGHTS_FILE = "weights.pt"
#: the largest weights.pt a parent may have (``--init-from``); checked before it is read
MAX_WEIGHTS_BYTES = 64 * 2**20
#: model and consumer names: lowercase letters, digits, '-' and '_', starting with a letter.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
#: a card larger than this is not read (a few hundred KB is typical)
MAX_CARD_BYTES = 16 * 2**20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------- identity
class ModelRef(_Frozen):
    """``name:version`` — the identity of one trained model."""

    name: str = Field(pattern=NAME_PATTERN, description="model name, e.g. 'churn'")
    version: int = Field(ge=1, description="positive integer version, chosen at training time")

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``'name:version'``; raises ``ValueError`` with a readable message."""
        name, sep, version = text.partition(":")
        if not sep or not version.isdigit():
            raise ValueError(f"expected NAME:VERSION such as 'churn:3', got {text!r}")
        return cls(name=name, version=int(version))

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


class UpstreamRef(_Frozen):
    """A model whose output this model consumes as a feature (a cascade edge)."""

    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1, description="the upstream version this model was trained against")
    feature: str | None = Field(None, description="the input feature fed by the upstream output (old cards)")
    onnx_sha256: str | None = Field(
        None, description="sha256 of the upstream's model.onnx used at training time"
    )
    output: Literal["probabilities", "label"] = Field(
        "probabilities",
        description="which upstream output feeds this model: calibrated probabilities (binary: the "
        "positive class only) or the predicted label (one categorical feature)",
    )
    features: list[str] = Field(
        default_factory=list, description="the downstream feature names this upstream feeds, in order"
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="the upstream's own feature names, taken from this model's request row by name",
    )


def upstream_feature_names(
    upstream: str, classes: list[str], output: Literal["probabilities", "label"]
) -> list[str]:
    """The downstream feature names fed by ``upstream`` (the cascade naming every part shares).

    ``probabilities``: one numeric feature per class, ``f"{upstream}__p_{class}"`` (binary: only the positive
    class ``classes[1]``); ``label``: one categorical feature ``f"{upstream}__label"`` whose levels are the
    upstream's classes.
    """
    if output == "label":
        return [f"{upstream}__label"]
    kept = classes[1:] if len(classes) == 2 else classes
    return [f"{upstream}__p_{c}" for c in kept]


class ParentRef(_Frozen):
    """The model whose weights initialized this one (transfer learning, ``lockgate train --init-from``)."""

    source: Literal["registry", "bundle", "checkpoint"] = Field(
        description="a registered NAME:VERSION, a bundle directory, or a weights file"
    )
    name: str | None = Field(None, pattern=NAME_PATTERN, description="the parent's name (None: a bare file)")
    version: int | None = Field(None, ge=1)
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the weights file read")
    onnx_sha256: str | None = Field(None, description="the parent's model.onnx (registry or bundle)")
    classes: list[str] = Field(default_factory=list, description="the parent's classes")
    hidden_layer_sizes: list[int] = Field(default_factory=list, description="the architecture inherited")
    layers_copied: int = Field(ge=0, description="hidden layers whose weights were copied from the parent")
    head: Literal["probed"] = Field(
        "probed", description="the output layer is new: fitted as a linear probe on the parent's features of "
        "the training rows, then fine-tuned with the rest"
    )
    frozen_layers: int = Field(0, ge=0, description="the first N hidden layers kept frozen")
    unfreeze_after: int | None = Field(
        None, ge=0, description="epoch after which the frozen layers were fine-tuned too (None: never)"
    )

    @property
    def ref(self) -> ModelRef | None:
        if self.name is None or self.version is None:
            return None
        return ModelRef(name=self.name, version=self.version)

    def __str__(self) -> str:
        if self.ref is not None:
            return str(self.ref)
        return f"a weights file (sha256 {self.weights_sha256[:12]}…)"


class OutputSpec(_Frozen):
    """One head of a multi-output model (``card.outputs``; empty for a single-head model).

    The first head is the card's own task: its ONNX outputs are ``label``/``probabilities`` as for every
    model. Another classification head ``NAME`` adds ``NAME__label`` int64 [N] and ``NAME__probabilities``
    float32 [N, C]; a regression head adds ``NAME__value`` float32 [N], inside ``range``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$", description="the target column")
    kind: Literal["classification", "regression"]
    classes: list[str] = Field(default_factory=list, description="classification: the classes, in order")
    range: list[float] | None = Field(None, description="regression: [low, high], the output's bounds")
    onnx_outputs: list[str] = Field(description="the graph outputs carrying this head")
    calibration: str | None = Field(None, description="classification: the calibration method")
    metrics: dict[str, float] = Field(default_factory=dict, description="on the test split")


# --------------------------------------------------------------------------------------- data
class FeatureSpec(_Frozen):
    """One column of the model's input table, in ``card.features`` order.

    Numeric columns (``kind="numeric"``) travel in the ONNX input ``input`` float32 [N, n_numeric] (missing =
    NaN); categorical and boolean columns in ``categorical`` string [N, n_categorical] (missing = ``""``,
    booleans as ``"true"``/``"false"``). The graph itself imputes and encodes.
    """

    name: str
    dtype: str = "float32"
    kind: Literal["numeric", "categorical", "boolean"] = "numeric"
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    levels: list[str] = Field(default_factory=list, description="levels kept by the encoder (training split)")
    missing: Literal["error", "impute_median", "level"] = Field(
        "error", description="a missing value: refused, replaced by the training median, or its own level"
    )
    missing_in_training: bool = False
    missing_indicator: bool = Field(False, description="the graph adds a 0/1 'was missing' column")
    impute_value: float | None = Field(None, description="the training median used for missing values")
    encoding: str = Field("passthrough", description="passthrough | onehot | frequency | ...")
    unknown: Literal["error", "ignore", "other"] = Field(
        "other", description="an unseen level: refused (error), all-zeros (ignore), or the 'other' level"
    )
    upstream: str | None = Field(
        None, description="the upstream model producing this column; None = a raw column the caller sends"
    )

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"


#: token ids the sequence kinds reserve: 0 pads a short sequence, 1 stands for a token outside the vocabulary
PAD_ID, UNKNOWN_ID = 0, 1
#: the largest image (pixels) and sequence (tokens) a card may declare: the gateway decodes no more
MAX_IMAGE_PIXELS = 4096
MAX_SEQUENCE_LENGTH = 512


class InputSpec(_Frozen):
    """One input of a model with several input kinds (``card.inputs``; empty = one plain table).

    An image or a token sequence travels in the ONNX input ``input`` as plain numeric columns (one per pixel
    in row-major ``H x W x C`` order, one per token position), listed in ``columns`` and described one by
    one in ``card.features`` like any numeric column. So every part that reads ``input`` [N, F] keeps
    working; this record says how the gateway builds those columns from an image or a list of tokens.

    - ``image``: ``shape`` [H, W, C], pixel values in ``value_range``; a nested list ``H x W`` (C = 1) or
      ``H x W x C`` of numbers, or a base64 PNG of exactly W x H pixels (8-bit, scaled from 0..255 to
      ``value_range``).
    - ``sequence``: at most ``max_length`` tokens from ``vocabulary``; the tokenizer is recorded here and
      applied by the gateway: token ``vocabulary[i]`` -> id ``i + 2``, ``0`` pads, ``1`` = an unknown token
      (``unknown``: ``"unk"`` maps it to id 1 with a warning, ``"error"`` refuses the request); the ids are
      right-aligned (``padding="left"``: pads first, the last token in the last column).
    - ``tabular``: plain numeric columns (the remaining features of a multi-input model).
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    kind: Literal["tabular", "image", "sequence"]
    columns: list[str] = Field(min_length=1, description="the card.features columns it fills, in order")
    shape: list[int] | None = Field(None, description="image: [height, width, channels]")
    value_range: list[float] | None = Field(None, description="image: [low, high] of a pixel value")
    max_length: int | None = Field(None, ge=1, le=MAX_SEQUENCE_LENGTH, description="sequence: most tokens")
    min_length: int = Field(1, ge=1, description="sequence: fewest tokens (an empty sequence is refused)")
    vocabulary: list[str] = Field(default_factory=list, description="sequence: token i has id i + 2")
    padding: Literal["left"] = "left"
    unknown: Literal["unk", "error"] = Field(
        "unk", description="sequence: a token outside the vocabulary -> id 1 with a warning, or refused"
    )
    tokenizer: str = Field("", description="how text becomes ids, in words (sequence)")

    @field_validator("shape")
    @classmethod
    def _image_shape(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or min(v) < 1 or v[0] * v[1] * v[2] > MAX_IMAGE_PIXELS):
                raise ValueError(f"an image shape is [H, W, C] of at most {MAX_IMAGE_PIXELS} values, got {v}")
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> InputSpec:
        n = len(self.columns)
        if self.kind == "image":
            if self.shape is None or self.shape[0] * self.shape[1] * self.shape[2] != n:
                raise ValueError(f"image {self.name!r}: shape {self.shape} must hold its {n} columns")
            low_high = self.value_range or []
            if len(low_high) != 2 or not low_high[0] < low_high[1]:
                raise ValueError(f"image {self.name!r}: value_range must be [low, high] with low < high")
        if self.kind == "sequence":
            if self.max_length != n or self.min_length > n:
                raise ValueError(f"sequence {self.name!r}: max_length {self.max_length} must equal its {n} "
                                 f"columns, min_length {self.min_length} at most that")
            if not self.vocabulary or len(set(self.vocabulary)) != len(self.vocabulary):
                raise ValueError(f"sequence {self.name!r}: the vocabulary must be non-empty, each token once")
        return self

    @property
    def width(self) -> int:
        return len(self.columns)


class SplitInfo(_Frozen):
    rows: int = Field(ge=0)
    sha256: str = Field(description="sha256 over the split's rows (features + target)")
    class_counts: dict[str, int] = Field(default_factory=dict)


class DatasetInfo(_Frozen):
    name: str
    description: str
    source: str = Field(description="'sklearn:<loader>', 'synthetic:<generator>' or a CSV path")
    rows: int
    n_features: int
    sha256: str
    target: str | None = None
    segment: str | None = None
    splits: dict[str, SplitInfo] = Field(
        description="train / validation / calibration / test, disjoint by row"
    )
    splits_disjoint: bool
    missing_values: str = Field("reject", description="how NaN/inf in features were handled")
    time_column: str | None = Field(
        None, description="out-of-time split: train on the oldest rows, validate/calibrate/test on newer ones"
    )


class InputPolicy(_Frozen):
    """What the serving edge rejects before the model sees it (the gate checks the model for the rest)."""

    reject_nonfinite: bool = Field(True, description="NaN and ±inf are refused with a 4xx")
    max_abs_value: float = Field(
        3.0e38, description="values with |x| above this are refused (float32 overflow)"
    )
    max_batch_rows: int = Field(1024, ge=1, description="largest batch one request may carry")
    out_of_range_sigmas: float = Field(
        6.0, description="warn when a value lies this many std beyond the observed training range"
    )
    accepts_float64: bool = Field(True, description="float64 input is cast to float32 at the edge")
    accepts_integers: bool = Field(True, description="integer input is cast to float32 at the edge")


# --------------------------------------------------------------------------------------- training
class TrialRecord(_Frozen):
    params: dict[str, Any]
    score: float
    fit_seconds: float
    train_score: float | None = Field(None, description="the metric on the training split (size search)")
    phase: str | None = Field(None, description="size search: start | grow | regularize")


class SearchInfo(_Frozen):
    method: str = Field(description="e.g. 'random search, seeded'")
    metric: str = Field(description="selection metric, e.g. 'f1_macro'")
    metric_definition: str
    selection: str = Field(description="how the winner was chosen")
    trials: int
    ranges: dict[str, Any] = Field(description="every hyperparameter's range or choices considered")
    defaults: dict[str, Any]
    best_params: dict[str, Any]
    best_value: float
    candidates: list[TrialRecord]


class CalibrationMetrics(_Frozen):
    ece: float
    mce: float
    brier: float
    log_loss: float
    bins: int
    per_class: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="class -> one-vs-rest ece, mce, brier (empty in older cards)"
    )


class CrossFitInfo(_Frozen):
    """How the calibrator's rows were produced when they were not a dedicated calibration split."""

    folds: int = Field(ge=2, description="K of --calibration-cv K")
    ensemble: bool = Field(
        description="true: the graph averages the K (model, calibrator) pairs; false: one model refit on "
        "all rows plus one calibrator fitted on the out-of-fold responses"
    )
    rows: int = Field(ge=0, description="rows cross-fitted (train + validation)")
    splits: list[str] = Field(default_factory=lambda: ["train", "validation"])


class RefitInfo(_Frozen):
    """The final model refit after selection (as scikit-learn's search does)."""

    refit: bool
    splits: list[str] = Field(default_factory=list, description="the splits the final model was fitted on")
    rows: int = Field(0, ge=0)


CALIBRATION_METHODS = ("none", "sigmoid", "isotonic", "temperature", "beta", "vector", "dirichlet")


#: held-out rows per reliability bin below which the card's ECE comes with a small-sample caveat
ROWS_PER_BIN_FOR_ECE = 30


class CalibrationInfo(_Frozen):
    method: Literal["none", "sigmoid", "isotonic", "temperature", "beta", "vector", "dirichlet"]
    requested: str = Field(description="what was asked for ('auto' included)")
    reason: str
    holdout_rows: int
    before: CalibrationMetrics
    after: CalibrationMetrics
    fitted_on: str = Field(
        "calibration split", description="'calibration split' or 'out-of-fold responses (K-fold cross-fit)'"
    )
    fit_rows: int | None = Field(None, description="rows the calibrator was fitted on")
    cross_fit: CrossFitInfo | None = None
    refit: RefitInfo | None = None
    candidates: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="auto: method -> out-of-fold brier and log_loss"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the fitted calibrator's parameters")
    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. calibration worsened Brier/log-loss on the held-out test split, or a temperature "
        "at its bound",
    )

    def sample_caveat(self) -> str | None:
        """A plain caveat when the held-out rows are too few for ECE and the reliability diagram to be
        read closely (fewer than :data:`ROWS_PER_BIN_FOR_ECE` per bin on average); None otherwise."""
        bins = max(self.after.bins, 1)
        per_bin = self.holdout_rows / bins
        if per_bin >= ROWS_PER_BIN_FOR_ECE:
            return None
        error = 0.5 / max(per_bin, 1.0) ** 0.5  # the largest standard error of a frequency over per_bin rows
        return (
            f"small sample: ECE and the reliability diagram rest on {self.holdout_rows} held-out rows, about "
            f"{per_bin:.0f} per bin ({bins} bins), so a bin's observed frequency is uncertain by up to "
            f"±{error:.2f} (one standard error): read ECE differences smaller than that as noise"
        )


class TestMetrics(_Frozen):
    rows: int
    accuracy: float
    f1_macro: float
    precision_macro: float
    recall_macro: float
    cohen_kappa: float
    log_loss: float
    brier: float
    ece: float
    mce: float
    bins: int
    per_class: dict[str, dict[str, float]] = Field(
        description="class -> precision, recall, f1, accuracy (one-vs-rest), support"
    )
    confusion_matrix: list[list[int]]
    slices: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="segment value -> metrics on that slice"
    )


class ExportInfo(_Frozen):
    onnx_sha256: str
    opset: dict[str, int]
    parity_max_abs_diff: float
    parity_rows: int
    parity_limit: float = 1e-4
    precision: str = Field(description="float32, or float64 inside the graph and why")
    converter: str


class InfrastructureInfo(_Frozen):
    cpu_model: str
    cores: int
    ram_gb: float
    os: str
    python: str
    libraries: dict[str, str]
    device: str = "cpu"


class RuntimeInfo(_Frozen):
    total_seconds: float
    search_seconds: float
    per_candidate_seconds: list[float]
    calibration_seconds: float
    export_seconds: float


class CostInfo(_Frozen):
    price_per_core_hour: float
    core_hours: float
    estimated_cost: float
    currency: str = "USD"


class ModelCard(_Frozen):
    """Everything needed to reproduce, judge and consume one model. Written as ``card.json``."""

    schema_version: str = SCHEMA_VERSION
    ref: ModelRef
    task: Literal["binary", "multiclass"]
    family: str
    classes: list[str] = Field(min_length=2)
    features: list[FeatureSpec] = Field(min_length=1)
    inputs: list[InputSpec] = Field(
        default_factory=list, description="image / sequence inputs, the columns each fills (empty: a table)"
    )
    preprocessing: dict[str, Any] | None = Field(
        None, description="the table preprocessing fused into the graph (missing policy, unknown-level "
        "policy, one-hot limit, rare-level threshold, encodings per column); None = the features go to the "
        "model as they are",
    )
    input_policy: InputPolicy = InputPolicy()
    dataset: DatasetInfo
    hyperparameters: dict[str, Any]
    search: SearchInfo
    calibration: CalibrationInfo
    metrics: TestMetrics
    older_metrics: TestMetrics | None = Field(
        None, description="with a time column: the same metrics on a held-out slice of the training period"
    )
    recommended_threshold: float | None = Field(
        None, description="binary: the probability of the positive class above which to say yes"
    )
    export: ExportInfo
    infrastructure: InfrastructureInfo
    runtime: RuntimeInfo
    cost: CostInfo
    seed: int
    upstream: list[UpstreamRef] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(
        default_factory=list,
        description="multi-output models: every head (the first is the card's task); empty = one head",
    )
    parent: ParentRef | None = Field(
        None, description="transfer learning: the model whose weights initialized this one, what was frozen"
    )
    train_options: dict[str, Any] = Field(
        default_factory=dict,
        description="the 'lockgate train' options of this run (what 'train --retrain-from' replays); "
        "empty in older cards",
    )
    how_to_consume: str
    created_at: datetime
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="family-specific extras (learning curves, stacking report, shift report, ...)",
    )

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: str) -> str:
        if v != SCHEMA_VERSION:
            raise ValueError(f"card schema_version {v!r} is not supported (expected {SCHEMA_VERSION!r})")
        return v

    @model_validator(mode="after")
    def _inputs_name_numeric_columns(self) -> ModelCard:
        numeric = {f.name for f in self.features if f.kind == "numeric"}
        seen: set[str] = set()
        for spec in self.inputs:
            unknown = [c for c in spec.columns if c not in numeric]
            if unknown or not seen.isdisjoint(spec.columns):
                shown = (unknown or sorted(seen & set(spec.columns)))[:3]
                raise ValueError(f"inputs.{spec.name}: its columns must be numeric features, each in one "
                                 f"input (not: {shown})")
            seen.update(spec.columns)
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[FeatureSpec]:
        """The columns of the ONNX input ``input``, in order."""
        return [f for f in self.features if f.kind == "numeric"]

    @property
    def categorical_features(self) -> list[FeatureSpec]:
        """The columns of the ONNX input ``categorical`` (categorical and boolean), in order."""
        return [f for f in self.features if f.kind != "numeric"]


# --------------------------------------------------------------------------------------- gate
class CheckResult(_Frozen):
    name: str
    status: Literal["pass", "fail", "error", "skip"]
    value: Any = None
    limit: Any = None
    message: str = ""
    seconds: float = 0.0


class GateReport(_Frozen):
    """The safety gate's verdict on one bundle, bound to the sha256 of its ``model.onnx``."""

    schema_version: str = SCHEMA_VERSION
    ref: ModelRef | None = Field(None, description="None when the card itself could not be read")
    onnx_sha256: str
    passed: bool
    checks: list[CheckResult]
    policy: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    tool: str = "lockgate check"

    def binds(self, onnx_sha256: str) -> bool:
        """True when this report passed *and* was made for exactly this model file."""
        return self.passed and self.onnx_sha256 == onnx_sha256


# --------------------------------------------------------------------------------------- errors
class BundleError(Exception):
    """Base of bundle problems."""


class InvalidBundleError(BundleError):
    """A directory that is not a loadable bundle. ``str()`` says what is wrong and how to fix it."""

    def __init__(self, path: Path | str, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        msg = f"{self.path}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


# --------------------------------------------------------------------------------------- files
def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def published_mode() -> int:
    """The mode ``open()`` would give a new file (0644 under the usual umask 022). ``mkstemp`` makes 0600
    temp files; every file we rename into place gets this mode first, so reports read like the rest."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_json_atomic(
    path: Path | str, model: BaseModel | dict[str, Any], mode: int | None = None
) -> None:
    """Write JSON to a temp file beside ``path`` and rename it into place (readable like the rest of a
    bundle: ``mode``, default :func:`published_mode`, 0644 under umask 022 — not mkstemp's 0600)."""
    path = Path(path)
    text = (
        model.model_dump_json(indent=2)
        if isinstance(model, BaseModel)
        else json.dumps(model, indent=2, sort_keys=True, default=str)
    )
    write_text_atomic(path, text + "\n", mode)


def write_text_atomic(path: Path | str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it into place (``mode`` as for
    :func:`write_json_atomic`): a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, published_mode() if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(target: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp directory beside ``target``; on success it becomes ``target``, on error it vanishes.

    Raises ``FileExistsError`` up front when ``target`` exists and ``overwrite`` is False.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _report_of_envelope(raw: Any) -> GateReport:
    """The unverified :class:`GateReport` view of a gate.json envelope (see cascade_registry.attestation)."""
    statement = json.loads(base64.b64decode(raw["payload"], validate=True))
    predicate = statement["predicate"]
    model = next(
        (s["digest"].get("sha256", "") for s in statement["subject"] if s.get("name") == MODEL_FILE), ""
    )
    return GateReport.model_validate(
        {
            "ref": predicate.get("ref"),
            "onnx_sha256": model,
            "passed": predicate["passed"],
            "checks": predicate["checks"],
            "policy": predicate.get("policy", {}),
            "created_at": predicate["created_at"],
            "tool": predicate.get("tool", "lockgate check"),
        }
    )


# --------------------------------------------------------------------------------------- bundle
class ModelBundle:
    """A validated bundle on disk. Build with :meth:`load`."""

    def __init__(self, path: Path, card: ModelCard, onnx_sha256: str) -> None:
        self.path = path
        self.card = card
        self.onnx_sha256 = onnx_sha256

    @property
    def ref(self) -> ModelRef:
        return self.card.ref

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def reference_path(self) -> Path:
        return self.path / REFERENCE_FILE

    @property
    def gate_path(self) -> Path:
        return self.path / GATE_FILE

    @classmethod
    def read_card(cls, path: Path | str) -> ModelCard:
        """Parse ``card.json`` of the bundle at ``path`` without touching the model file."""
        path = Path(path)
        card_path = path / CARD_FILE
        if not path.is_dir():
            raise InvalidBundleError(path, "is not a directory", "pass the bundle directory")
        if not card_path.is_file() and not card_path.is_symlink():
            raise InvalidBundleError(path, f"has no {CARD_FILE}", "train it with 'lockgate train'")
        try:
            raw = load_json_bounded(card_path, MAX_CARD_BYTES)
        except ValueError as e:
            raise InvalidBundleError(
                path, f"{CARD_FILE} {e}", "write the card with 'lockgate train'"
            ) from None
        try:
            return ModelCard.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in e.errors()[:5]
            )
            raise InvalidBundleError(
                path, f"{CARD_FILE} does not match the card schema: {problems}"
            ) from None

    @classmethod
    def load(cls, path: Path | str) -> ModelBundle:
        """Validate the card's schema and the model file's sha256; raise :class:`InvalidBundleError`."""
        path = Path(path)
        card = cls.read_card(path)
        model = path / MODEL_FILE
        if not model.is_file() or model.is_symlink():
            raise InvalidBundleError(path, f"has no regular file {MODEL_FILE}")
        digest = sha256_file(model)
        if digest != card.export.onnx_sha256:
            raise InvalidBundleError(
                path,
                f"{MODEL_FILE} sha256 {digest[:12]}… does not match the card's "
                f"{card.export.onnx_sha256[:12]}…",
                "the model file was changed after export; re-export the bundle",
            )
        return cls(path, card, digest)

    def gate_report(self) -> GateReport | None:
        """The gate report in the bundle, NOT verified, or None when there is none or it cannot be parsed.

        Only for display and local checks: the registry verifies the signed envelope itself
        (:mod:`cascade_registry.trust`)."""
        try:
            raw = load_json_bounded(self.gate_path, 16 * 2**20)
            return _report_of_envelope(raw)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            return None
