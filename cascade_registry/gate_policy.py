"""The gate policy's schema, and how the registry judges whether a policy is at least as strict as another.

The gate (``safety``) reads a policy file into :class:`GatePolicy` and records it in its signed verdict;
the registry compares that recorded policy, limit by limit, with its own minimum policy
(:func:`policy_shortfalls`). Both sides therefore share this one schema, which lives at the bottom of the
import graph. Every leaf of the policy has a direction in :data:`STRICTER`: which way makes it stricter.

stdlib + pydantic only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "STRICTER",
    "CalibrationPolicy",
    "DeterminismPolicy",
    "FilePolicy",
    "GatePolicy",
    "InputsPolicy",
    "LoadPolicy",
    "MonitorPolicy",
    "ParityPolicy",
    "QualityPolicy",
    "ResourcesPolicy",
    "SandboxPolicy",
    "ServePolicy",
    "policy_digest",
    "policy_shortfalls",
]


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
    min_holdout_rows: int = Field(
        30, ge=1, description="fewer held-out rows than this cannot vouch for a metric: quality fails"
    )


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


class MonitorPolicy(_Section):
    """Limits on live traffic, judged by ``lockgate monitor`` after release (not by the gate)."""

    drift_auc: float = Field(
        0.7,
        gt=0.5,
        le=1,
        description="adversarial-validation AUC (captured inputs vs the training reference) at or above "
        "which 'lockgate monitor --drift' marks the version stale",
    )
    drift_min_rows: int = Field(
        50, ge=20, description="fewer captured rows than this cannot vouch for a drift verdict"
    )
    drift_max_rows: int = Field(
        5000, ge=100, description="at most this many of the newest captured rows are compared"
    )


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
    monitor: MonitorPolicy = MonitorPolicy()

    def with_changes(self, **sections: dict[str, Any]) -> GatePolicy:
        """A copy with some section values replaced, e.g. ``with_changes(sandbox={"wall_seconds": 3})``."""
        data = self.model_dump()
        for name, values in sections.items():
            if isinstance(data.get(name), dict):
                data[name] = {**data[name], **values}
            else:
                data[name] = values
        return GatePolicy.model_validate(data)


Direction = Literal["lower", "higher", "same", "subset", "false", "within", "any"]

#: every policy leaf -> which way is stricter. "lower": a smaller number (a ceiling); "higher": a larger
#: number (a floor, or more probing); "same": must be equal; "subset": a list that may only shrink;
#: "false": a switch that is stricter off; "within": opset ranges that may only narrow; "any": no bearing
#: on safety (e.g. threads).
STRICTER: dict[str, Direction] = {
    "budget_seconds": "lower",
    "sandbox.memory_mb": "lower",
    "sandbox.cpu_seconds": "lower",
    "sandbox.wall_seconds": "lower",
    "sandbox.threads": "any",
    "file.max_size_mb": "lower",
    "file.allowed_domains": "subset",
    "file.allow_external_data": "false",
    "file.opsets": "within",
    "load.max_seconds": "lower",
    "load.max_rss_mb": "lower",
    "inputs.far_out_of_range_factor": "higher",
    "inputs.probability_tolerance": "lower",
    "inputs.row_sum_tolerance": "lower",
    "resources.batch1_repeats": "higher",
    "resources.max_batch_repeats": "higher",
    "resources.p50_ms_batch1": "lower",
    "resources.p99_ms_batch1": "lower",
    "resources.p50_ms_max_batch": "lower",
    "resources.p99_ms_max_batch": "lower",
    "resources.max_rss_mb": "lower",
    "resources.cpu_ms_per_row": "lower",
    "resources.max_batch_rows_limit": "lower",
    "determinism.rows": "higher",
    "parity.max_abs_diff": "lower",
    "quality.metric": "same",
    "quality.min_metric": "higher",
    "quality.max_ece": "lower",
    "quality.ece_bins": "same",
    "quality.min_slice_metric": "higher",
    "quality.min_slice_rows": "lower",
    "quality.card_tolerance": "lower",
    "quality.max_regression": "lower",
    "quality.min_holdout_rows": "higher",
    "calibration.max_class_ece": "lower",
    "calibration.max_brier": "lower",
    "calibration.max_log_loss": "lower",
    "calibration.max_ece_delta": "lower",
    "calibration.min_decision_agreement": "higher",
    "serve.startup_seconds": "lower",
    "serve.request_seconds": "lower",
    "monitor.drift_auc": "any",
    "monitor.drift_min_rows": "any",
    "monitor.drift_max_rows": "any",
}
#: sections judged after release, not by the gate: a verdict recorded before they existed still passes
ADVISORY_SECTIONS = ("monitor.",)


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in STRICTER:
            out.update(_leaves(value, f"{path}."))
        else:
            out[path] = value
    return out


def _weaker(direction: Direction, floor: Any, used: Any) -> bool:
    if direction == "any":
        return False
    if direction == "lower":
        return not float(used) <= float(floor)
    if direction == "higher":
        return not float(used) >= float(floor)
    if direction == "false":
        return bool(used) and not bool(floor)
    if direction == "subset":
        norm = lambda xs: {x or "ai.onnx" for x in xs}  # noqa: E731 - '' and 'ai.onnx' are one domain
        return not norm(used) <= norm(floor)
    if direction == "within":
        return any(
            domain not in floor or low < floor[domain][0] or high > floor[domain][1]
            for domain, (low, high) in used.items()
        )
    return used != floor


def policy_shortfalls(floor: GatePolicy, used: dict[str, Any]) -> list[str]:
    """Every limit where the policy ``used`` (as recorded in a verdict) is weaker than ``floor``.

    A limit missing from ``used``, an unknown limit, or a value of the wrong type counts as weaker."""
    try:
        used_policy = GatePolicy.model_validate(used)
    except ValueError as e:
        return [f"the recorded policy is not a valid gate policy ({str(e).splitlines()[0]})"]
    mine, theirs = _leaves(floor.model_dump(mode="json")), _leaves(used_policy.model_dump(mode="json"))
    given = _leaves(used)
    problems = [
        f"{key} is missing"
        for key in sorted(mine.keys() - given.keys())
        if not key.startswith(ADVISORY_SECTIONS)
    ]
    for key, direction in STRICTER.items():
        if key in given and _weaker(direction, mine[key], theirs[key]):
            problems.append(
                f"{key} = {json.dumps(theirs[key])} is weaker than the minimum {json.dumps(mine[key])}"
            )
    return problems


def policy_digest(policy: dict[str, Any]) -> str:
    """sha256 of the policy's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(policy, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
