"""``TrainConfig``: every knob of one training run, validated; loadable from a TOML or YAML file."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cascade_registry.artifacts import NAME_PATTERN, ModelRef
from training.datasets import BUILTIN_DATASETS
from training.errors import ConfigError
from training.families import family_names, is_family

__all__ = ["BUILTIN_DATASETS", "METRICS", "TrainConfig", "load_config"]

METRICS = ("f1_macro", "cohen_kappa", "accuracy", "log_loss")


class TrainConfig(BaseModel):
    """One training run. The defaults train the demo model (breast_cancer, logistic regression)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(
        "breast_cancer",
        description="breast_cancer | wine | digits | imbalanced | sequences | mixed_inputs, or the path of a "
        "CSV file",
    )
    target: str | None = Field(None, description="CSV only: the column holding the class label")
    segment: str | None = Field(None, description="CSV only: a column to slice test metrics by")
    model: str = Field("svm", description="model family (see training.families)")
    calibration: Literal[
        "none", "sigmoid", "isotonic", "temperature", "beta", "vector", "dirichlet", "auto"
    ] = Field(
        "auto",
        description="none | sigmoid (Platt) | isotonic | temperature (logit families only) | beta | "
        "vector | dirichlet (multiclass) | auto (best out-of-fold Brier, none included)",
    )
    calibration_cv: int = Field(
        5, ge=0, le=20,
        description="K >= 2: cross-fit the calibrator on out-of-fold responses of train+validation; "
        "0: a dedicated calibration split",
    )
    calibration_ensemble: bool = Field(
        True, description="with calibration_cv K: export the K (model, calibrator) pairs averaged (true) or "
        "one model refit on all rows + one calibrator on the out-of-fold responses (false)",
    )
    refit: bool = Field(True, description="refit the selected model on train + validation")
    trials: int = Field(8, ge=1, le=500, description="random-search budget (trial 1 = the defaults)")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    metric: Literal["f1_macro", "cohen_kappa", "accuracy", "log_loss"] = "f1_macro"
    name: str = Field("demo", pattern=NAME_PATTERN)
    version: int = Field(1, ge=1)
    out: Path = Path("out")
    overwrite: bool = False
    missing: Literal["auto", "error", "reject", "impute_median"] = Field(
        "auto", description="missing values: auto = numeric training-split median + missing indicator, "
        "categorical 'missing' level, inside the graph (impute_median is an alias); error = refuse them "
        "(reject is an alias)",
    )
    unknown_category: Literal["error", "ignore", "other"] = Field(
        "other", description="an unseen level at serving: error (refused), ignore (all zeros), other (the "
        "grouped 'other' level, with a warning); a token outside a sequence's vocabulary: error refuses it, "
        "the others read it as the unknown token",
    )
    categorical: tuple[str, ...] = Field((), description="columns read as categorical whatever they hold")
    numeric: tuple[str, ...] = Field((), description="columns read as numbers (booleans become 0/1)")
    drop: tuple[str, ...] = Field((), description="columns left out")
    time_column: str | None = Field(
        None, description="split by this column's time: train on older rows, validate/calibrate/test on "
        "newer "
        "ones; metrics on an older held-out slice too",
    )
    onehot_max: int | None = Field(
        None, ge=1, le=1000, description="more kept levels than this: target encoding (default: the "
        "family's: 64 for logistic regression, SVM and MLP, 16 for trees and naive Bayes)",
    )
    rare_min: int = Field(3, ge=1, description="levels with fewer training rows join the 'other' level")
    price_per_core_hour: float = Field(0.05, ge=0, description="USD per core-hour for the cost estimate")
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)
    calibration_fraction: float = Field(0.2, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    reference_rows: int = Field(64, ge=1, le=10_000)
    ece_bins: int = Field(10, ge=2, le=100)
    parity_limit: float = Field(1e-4, gt=0)
    progress: bool = Field(True, description="show a progress bar on stderr during the search")
    upstream: tuple[str, ...] = Field(
        (), description="released upstream models NAME:VERSION whose outputs become features (a cascade)"
    )
    upstream_output: tuple[Literal["probabilities", "label"], ...] = Field(
        (), description="per upstream (or one for all): probabilities (default; binary: the positive class) "
        "or label (one categorical feature)",
    )
    threads: int = Field(
        1, ge=1, le=256, description="native (OpenMP/BLAS) threads while training; 1 is fastest on small data"
    )
    jobs: int = Field(
        1,
        ge=1,
        le=256,
        description="search trials and cross-fit folds fitted in parallel (joblib worker processes); "
        "the exported ONNX is byte-identical whatever the number",
    )
    ray_address: str | None = Field(
        None,
        description="fit the trials and folds as tasks on this Ray cluster (the extra lockgate[ray]); "
        "with jobs 1, as many at once as the cluster has CPUs",
    )

    init_from: str | None = Field(
        None, max_length=4096,
        description="transfer learning (--model mlp): start from this parent's weights: a registered "
        "NAME:VERSION, a bundle directory or a weights.pt file",
    )
    freeze: int = Field(0, ge=0, le=32, description="with init_from: keep the first N hidden layers frozen")
    unfreeze_after: int | None = Field(
        None, ge=1, le=100_000, description="with freeze: fine-tune the frozen layers too from this epoch on"
    )
    size_search: bool = Field(
        False, description="--model mlp: the network size search (start 2 x 128, grow until the training "
        "split is overfitted, then regularize) instead of the random search",
    )

    target2: str | None = Field(
        None, max_length=256, description="multi-output (--model mlp, CSV): a second target column, "
        "trained as a second head on the shared network",
    )
    target2_kind: Literal["auto", "classification", "regression"] = Field(
        "auto", description="the second head: classification, regression (bounded to the training range), or "
        "auto (regression for a numeric column with more than 10 distinct values)",
    )
    gamma: float | None = Field(
        None, ge=0.0, le=1.0, description="multi-output cost gamma*C1 + (1-gamma)*C2; None: tuned on "
        "validation over 0.25, 0.5, 0.75",
    )

    @model_validator(mode="after")
    def _multi_output_options(self) -> TrainConfig:
        if self.target2 is None:
            if self.gamma is not None or self.target2_kind != "auto":
                raise ValueError("gamma/target2_kind: there is no --target2 second head")
            return self
        if self.model != "mlp":
            raise ValueError("target2: a second head needs --model mlp")
        if self.target is None or self.target2 == self.target:
            raise ValueError("target2: pass --target COL too, and a different column as --target2")
        if self.init_from is not None or self.size_search or self.upstream:
            raise ValueError("target2: a multi-output model is trained without --init-from, --size-search "
                             "or --upstream")
        return self

    @model_validator(mode="after")
    def _transfer_options(self) -> TrainConfig:
        if self.init_from is None and (self.freeze or self.unfreeze_after is not None):
            raise ValueError("freeze/unfreeze_after: there is no --init-from parent to freeze")
        if self.unfreeze_after is not None and not self.freeze:
            raise ValueError("unfreeze_after: nothing is frozen; pass --freeze N as well")
        if self.init_from is not None and self.size_search:
            raise ValueError(
                "size_search: the parent fixes the network size; drop --size-search or --init-from"
            )
        return self

    @property
    def deep_options(self) -> list[str]:
        """The options only a family with ``configure`` (the MLP) understands, when given."""
        given = {"init_from": self.init_from is not None, "freeze": bool(self.freeze),
                 "unfreeze_after": self.unfreeze_after is not None, "size_search": self.size_search}
        return [k for k, v in given.items() if v]

    @field_validator("model")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if not is_family(v):
            raise ValueError(f"unknown model family {v!r}; choose one of {', '.join(family_names())}")
        return v

    @field_validator("target", "segment")
    @classmethod
    def _non_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must be a column name, not empty")
        return v

    @field_validator("upstream")
    @classmethod
    def _upstream_refs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        names = []
        for text in v:
            try:
                names.append(ModelRef.parse(text).name)
            except ValueError:  # a malformed ref or a name outside NAME_PATTERN
                raise ValueError(f"{text!r} is not NAME:VERSION (a lowercase name of letters, digits, '-' "
                                 "and '_', a version >= 1), e.g. 'churn:3'") from None
        if len(set(names)) != len(names):
            raise ValueError(f"names one model twice ({', '.join(v)}); name each upstream once")
        return v

    @model_validator(mode="after")
    def _one_output_per_upstream(self) -> TrainConfig:
        if len(self.upstream_output) > 1 and len(self.upstream_output) != len(self.upstream):
            raise ValueError(
                f"upstream_output: {len(self.upstream_output)} values for {len(self.upstream)} upstream "
                "models; give one for all, or one per --upstream in the same order"
            )
        if self.upstream_output and not self.upstream:
            raise ValueError("upstream_output: there is no --upstream to apply it to")
        return self

    @property
    def upstream_specs(self) -> list[tuple[ModelRef, Literal["probabilities", "label"]]]:
        """Each upstream ref with the output it feeds (default probabilities)."""
        outputs = self.upstream_output or ("probabilities",)
        if len(outputs) == 1:
            outputs = outputs * len(self.upstream)
        return [(ModelRef.parse(t), o) for t, o in zip(self.upstream, outputs, strict=True)]

    @property
    def recorded_options(self) -> dict[str, Any]:
        """The options the card records (``card.train_options``), what ``--retrain-from`` replays: all but
        where the bundle goes and how the run is displayed."""
        return self.model_dump(mode="json", exclude={"out", "overwrite", "progress"})

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> TrainConfig:
        if self.calibration_cv == 1:
            raise ValueError("calibration_cv must be 0 (a calibration split) or at least 2 folds")
        total = self.validation_fraction + self.effective_calibration_fraction + self.test_fraction
        if total >= 0.9:
            raise ValueError(
                f"validation+calibration+test fractions sum to {total:.2f}; keep them below 0.9 "
                "so the training split keeps at least 10% of the rows"
            )
        return self

    @property
    def effective_calibration_fraction(self) -> float:
        """The calibration split's share: 0 when the calibrator is cross-fitted."""
        return 0.0 if self.calibration_cv else self.calibration_fraction

    @property
    def missing_policy(self) -> str:
        """'auto' or 'error' (the aliases resolved)."""
        return "error" if self.missing in ("error", "reject") else "auto"

    @property
    def is_builtin_data(self) -> bool:
        return self.data in BUILTIN_DATASETS

    @property
    def bundle_dir(self) -> Path:
        return Path(self.out) / f"{self.name}-{self.version}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Validate ``values``; raise :class:`ConfigError` naming every bad field."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as e:
            raise ConfigError(_describe(e), "see 'lockgate train --help' for the accepted values") from None


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known option"
        parts.append(f"{loc}: {msg}")
    return "invalid training configuration: " + "; ".join(parts)


def load_config(path: Path | str) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file into a mapping of config values.

    A ``[train]`` table (TOML) or ``train:`` key (YAML) is used when present, else the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "pass the path of a .toml or .yaml file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            raw: Any = tomllib.loads(text)
        elif suffix in {".yaml", ".yml"}:
            raw = yaml.safe_load(text) or {}
        else:
            raise ConfigError(
                f"config file {path} has an unknown extension {suffix!r}", "use .toml, .yaml or .yml"
            )
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}", "fix the syntax") from None
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise ConfigError(f"config file {path} is not valid: {e}", "fix the syntax") from None
    if isinstance(raw, dict) and isinstance(raw.get("train"), dict):
        raw = raw["train"]
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a table of options", "e.g. model = 'svm'")
    return raw
