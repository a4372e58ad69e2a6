"""The gate policy: every limit the checks apply, read from a TOML file over documented defaults.

The defaults live in ``safety/default_policy.toml`` (shipped with the package, read through
:mod:`importlib.resources`); a user policy file only needs the keys it changes.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from safety.errors import PolicyError

__all__ = [
    "DEFAULT_POLICY_RESOURCE",
    "GatePolicy",
    "default_policy_text",
    "load_policy",
]

DEFAULT_POLICY_RESOURCE = "default_policy.toml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SandboxPolicy(_Section):
    memory_mb: int = Field(2048, ge=256, description="RLIMIT_AS of the worker, MB")
    cpu_seconds: int = Field(20, ge=1, description="RLIMIT_CPU of the worker, seconds")
    wall_seconds: float = Field(20.0, gt=0, description="wall-clock timeout of one worker, seconds")
    threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads")


class FilePolicy(_Section):
    max_size_mb: float = Field(200.0, gt=0)
    allowed_domains: list[str] = Field(default_factory=lambda: ["", "ai.onnx", "ai.onnx.ml"])
    allow_external_data: bool = False
    opsets: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {"ai.onnx": (9, 23), "ai.onnx.ml": (1, 5)}
    )

    @field_validator("opsets", mode="before")
    @classmethod
    def _standard_domain_named_once(cls, v: Any) -> Any:
        """'' and 'ai.onnx' are the same domain; store it as 'ai.onnx' (how the inspection reports it)."""
        if isinstance(v, dict) and "" in v:
            v = {("ai.onnx" if k == "" else k): r for k, r in v.items()}
        return v

    @model_validator(mode="after")
    def _ranges_ordered(self) -> FilePolicy:
        for domain, (low, high) in self.opsets.items():
            if low > high:
                raise ValueError(f"file.opsets[{domain!r}]: lowest {low} is above highest {high}")
        return self


class LoadPolicy(_Section):
    max_seconds: float = Field(10.0, gt=0)
    max_rss_mb: float = Field(1024.0, gt=0)


class InputsPolicy(_Section):
    far_out_of_range_factor: float = Field(1000.0, gt=0)
    probability_tolerance: float = Field(1e-6, ge=0)
    row_sum_tolerance: float = Field(1e-4, gt=0)


class ResourcesPolicy(_Section):
    batch1_repeats: int = Field(200, ge=5)
    max_batch_repeats: int = Field(10, ge=2)
    p50_ms_batch1: float = Field(5.0, gt=0)
    p99_ms_batch1: float = Field(50.0, gt=0)
    p50_ms_max_batch: float = Field(200.0, gt=0)
    p99_ms_max_batch: float = Field(1000.0, gt=0)
    max_rss_mb: float = Field(1024.0, gt=0)
    cpu_ms_per_row: float = Field(1.0, gt=0)
    max_batch_rows_limit: int = Field(
        65536, ge=1, description="cards allowing larger batches fail; the gate cannot vouch for them"
    )


class DeterminismPolicy(_Section):
    rows: int = Field(256, ge=1)


class ParityPolicy(_Section):
    max_abs_diff: float = Field(1e-4, gt=0)


class QualityPolicy(_Section):
    metric: Literal["accuracy", "f1_macro", "balanced_accuracy"] = "f1_macro"
    min_metric: float = Field(0.6, ge=0, le=1)
    max_ece: float = Field(0.15, ge=0, le=1)
    ece_bins: int = Field(10, ge=2, le=100)
    min_slice_metric: float = Field(0.5, ge=0, le=1)
    min_slice_rows: int = Field(20, ge=1)
    card_tolerance: float = Field(0.01, ge=0, le=1)
    max_regression: float = Field(0.02, ge=0, le=1)


class CalibrationPolicy(_Section):
    max_class_ece: float = Field(0.25, ge=0, le=1, description="ceiling on each class's one-vs-rest ECE")
    max_brier: float = Field(0.5, ge=0, le=2, description="ceiling on the held-out Brier score")
    max_log_loss: float = Field(2.0, gt=0, description="ceiling on the held-out log loss")
    max_ece_delta: float = Field(0.02, ge=0, le=1, description="|ONNX ECE - the card's native ECE|")
    min_decision_agreement: float = Field(
        0.98, ge=0, le=1, description="share of reference rows whose decision at the threshold agrees"
    )


class ServePolicy(_Section):
    startup_seconds: float = Field(60.0, gt=0)
    request_seconds: float = Field(10.0, gt=0)


class GatePolicy(_Section):
    """All limits of ``lockgate check``. ``GatePolicy()`` equals the shipped default policy file."""

    budget_seconds: float = Field(120.0, gt=0, description="wall-clock budget of the whole gate")
    sandbox: SandboxPolicy = SandboxPolicy()
    file: FilePolicy = FilePolicy()
    load: LoadPolicy = LoadPolicy()
    inputs: InputsPolicy = InputsPolicy()
    resources: ResourcesPolicy = ResourcesPolicy()
    determinism: DeterminismPolicy = DeterminismPolicy()
    parity: ParityPolicy = ParityPolicy()
    quality: QualityPolicy = QualityPolicy()
    calibration: CalibrationPolicy = CalibrationPolicy()
    serve: ServePolicy = ServePolicy()

    @classmethod
    def from_toml(cls, text: str, source: str = "<policy>") -> GatePolicy:
        """Parse policy TOML (only the keys to change are needed); raise :class:`PolicyError`."""
        try:
            raw: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PolicyError(
                f"{source} is not valid TOML: {e}", "fix the syntax of the policy file"
            ) from None
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:5]
            )
            raise PolicyError(
                f"{source} has invalid values: {problems}",
                "see docs/safety.md or safety/default_policy.toml for the keys and their ranges",
            ) from None

    def with_changes(self, **sections: dict[str, Any]) -> GatePolicy:
        """A copy with some section values replaced, e.g. ``with_changes(sandbox={"wall_seconds": 3})``."""
        data = self.model_dump()
        for name, values in sections.items():
            if isinstance(data.get(name), dict):
                data[name] = {**data[name], **values}
            else:
                data[name] = values
        return GatePolicy.model_validate(data)


def default_policy_text() -> str:
    """The text of the shipped default policy file."""
    return resources.files("safety").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")


def load_policy(path: Path | str | None = None) -> GatePolicy:
    """The policy in ``path``, or the shipped default when ``path`` is None."""
    if path is None:
        return GatePolicy.from_toml(default_policy_text(), source=f"safety/{DEFAULT_POLICY_RESOURCE}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"policy file {path} does not exist", "pass an existing TOML file to --policy"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(
            f"policy file {path} cannot be read: {e}", "pass a readable UTF-8 TOML file"
        ) from None
    return GatePolicy.from_toml(text, source=str(path))
