"""Service-level objectives: the SLO file (TOML), its evaluation against a run, and the verdict table.

An SLO file is a list of objectives; each names a metric, the endpoint (Locust request name, or
``"all"``) and exactly one bound::

    description = "demo gateway"

    [[objectives]]
    metric = "p95_ms"
    endpoint = "/predict"
    max = 250

    [[objectives]]
    metric = "rps"
    min = 20

The packaged default is ``loadtests/default_slo.toml`` (see :func:`load_slo`).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loadtests.errors import SloFileError
from loadtests.measurements import ALL_ENDPOINTS, Measurements

__all__ = [
    "DEFAULT_SLO",
    "Metric",
    "Objective",
    "ObjectiveResult",
    "SloFile",
    "Verdict",
    "evaluate",
    "load_slo",
    "parse_slo",
]

DEFAULT_SLO = "default_slo.toml"

Metric = Literal[
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "avg_ms",
    "error_ratio",
    "rps",
    "requests",
    "memory_growth_mb",
]
#: metrics measured per endpoint (the others belong to the whole run)
ENDPOINT_METRICS = set(get_args(Metric)) - {"memory_growth_mb"}
UNITS = {"error_ratio": "", "rps": " req/s", "requests": "", "memory_growth_mb": " MB"}


class Objective(BaseModel):
    """One objective: ``metric`` of ``endpoint`` must stay at most ``max`` (or at least ``min``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric
    endpoint: str = Field(ALL_ENDPOINTS, description="Locust request name such as '/predict', or 'all'")
    max: float | None = None
    min: float | None = None
    name: str | None = Field(None, description="a label for the table; defaults to 'metric endpoint'")

    @model_validator(mode="after")
    def _one_bound(self) -> Objective:
        if (self.max is None) == (self.min is None):
            raise ValueError("give exactly one of 'max' or 'min'")
        if self.metric == "memory_growth_mb" and self.endpoint != ALL_ENDPOINTS:
            raise ValueError("memory_growth_mb is measured for the whole server; drop 'endpoint'")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} {self.endpoint}"

    @property
    def limit(self) -> float:
        return self.max if self.max is not None else self.min  # type: ignore[return-value]

    @property
    def comparator(self) -> str:
        return "<=" if self.max is not None else ">="


class SloFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    objectives: list[Objective] = Field(min_length=1)


class ObjectiveResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    objective: Objective
    measured: float | None
    status: Literal["pass", "fail", "skip"]
    excess: float | None = Field(None, description="how far past the limit (same unit); None when held")
    note: str = ""

    @property
    def excess_percent(self) -> float | None:
        if self.excess is None or self.objective.limit == 0:
            return None
        return 100.0 * self.excess / abs(self.objective.limit)


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    results: list[ObjectiveResult]

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def failed(self) -> list[ObjectiveResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def table(self) -> str:
        """A fixed-width table: objective, measured, limit, verdict, by how much."""
        rows = [("objective", "measured", "limit", "verdict", "by how much")]
        for r in self.results:
            o = r.objective
            unit = UNITS.get(o.metric, " ms")
            measured = "-" if r.measured is None else f"{_num(r.measured)}{unit}"
            if r.excess is None:
                by = r.note
                if r.measured is not None:
                    by = f"{_num(abs(o.limit - r.measured))}{unit} to spare"
            else:
                pct = r.excess_percent
                by = f"{_num(r.excess)}{unit} {'over' if o.max is not None else 'under'}"
                by += f" ({pct:.0f}%)" if pct is not None else ""
                by += f"; {r.note}" if r.note else ""
            rows.append((o.label, measured, f"{o.comparator} {_num(o.limit)}{unit}", r.status.upper(), by))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = (
            "PASS: all objectives held" if self.passed else f"FAIL: {len(self.failed)} objective(s) broken"
        )
        return "\n".join([*lines, "", verdict])


def _num(x: float) -> str:
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


# --------------------------------------------------------------------------------------- loading
def parse_slo(text: str, source: str = "<slo>") -> SloFile:
    """Parse SLO TOML text; raise :class:`SloFileError` saying what is wrong and where."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SloFileError(f"{source} is not valid TOML: {e}", "fix the syntax") from None
    try:
        return SloFile.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:5]
        )
        raise SloFileError(
            f"{source} does not match the SLO schema: {problems}",
            "see docs/loadtests.md for the objective fields (metric, endpoint, max | min)",
        ) from None


def load_slo(path: Path | str | None = None) -> SloFile:
    """Read the SLO file at ``path``, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("loadtests").joinpath(DEFAULT_SLO).read_text(encoding="utf-8")
        return parse_slo(text, f"loadtests/{DEFAULT_SLO}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SloFileError(f"SLO file {path} does not exist", "pass an existing TOML file to --slo") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SloFileError(f"SLO file {path} cannot be read: {e}") from None
    return parse_slo(text, str(path))


# --------------------------------------------------------------------------------------- evaluation
def _measure(objective: Objective, m: Measurements) -> tuple[float | None, str]:
    if objective.metric == "memory_growth_mb":
        growth = m.memory_growth_mb
        return growth, "" if growth is not None else "memory not sampled in this mode (use --soak)"
    stats = m.endpoint(objective.endpoint)
    if stats is None:
        known = ", ".join(sorted(m.endpoints)) or "none"
        return None, f"no requests named {objective.endpoint!r} (known: {known})"
    if objective.metric == "error_ratio":
        return stats.error_ratio, ""
    if objective.metric == "requests":
        return float(stats.requests), ""
    if stats.requests == 0 and objective.metric != "rps":
        return None, f"no requests to {objective.endpoint!r}"
    return float(getattr(stats, objective.metric)), ""


def _judge(objective: Objective, m: Measurements) -> ObjectiveResult:
    measured, note = _measure(objective, m)
    if measured is None:
        status = "skip" if objective.metric == "memory_growth_mb" else "fail"
        return ObjectiveResult(objective=objective, measured=None, status=status, note=note)
    excess = measured - objective.max if objective.max is not None else objective.limit - measured
    held = excess <= 0
    return ObjectiveResult(
        objective=objective,
        measured=measured,
        status="pass" if held else "fail",
        excess=None if held else excess,
        note=note,
    )


def evaluate(slo: SloFile, measurements: Measurements) -> Verdict:
    """Check every objective of ``slo`` against ``measurements``."""
    return Verdict(results=[_judge(o, measurements) for o in slo.objectives])
