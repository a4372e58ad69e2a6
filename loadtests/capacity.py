"""Step load: raise the number of users step by step until an objective breaks; report the capacity.

The capacity is the last step at which every objective held: its users and requests per second.
Each step ramps to its user count, lets the gateway settle, then measures a fresh window.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from loadtests.measurements import ALL_ENDPOINTS, Measurements
from loadtests.plan import REQUEST_NAMES
from loadtests.runner import LoadSession
from loadtests.slo import SloFile, evaluate

__all__ = ["CapacityReport", "StepResult", "find_capacity"]


class StepResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    users: int
    rps: float
    predict_rps: float
    p95_ms: float
    p99_ms: float
    error_ratio: float
    gateway_cpu_percent: float | None
    locust_cpu_percent: float
    machine_cpu_percent: float | None = None
    held: bool
    broken: list[str]

    @classmethod
    def of(cls, m: Measurements, held: bool, broken: list[str]) -> StepResult:
        total = m.endpoints[ALL_ENDPOINTS]
        valid = m.endpoint(REQUEST_NAMES["valid"])
        return cls(
            users=m.users,
            rps=total.rps,
            predict_rps=valid.rps if valid else 0.0,
            p95_ms=valid.p95_ms if valid else total.p95_ms,
            p99_ms=valid.p99_ms if valid else total.p99_ms,
            error_ratio=total.error_ratio,
            gateway_cpu_percent=m.cpu.gateway_percent if m.cpu else None,
            locust_cpu_percent=m.cpu.locust_percent if m.cpu else 0.0,
            machine_cpu_percent=m.cpu.machine_percent if m.cpu else None,
            held=held,
            broken=broken,
        )


class CapacityReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    steps: list[StepResult]
    capacity: StepResult | None
    stopped_because: str

    def table(self) -> str:
        head = (
            "users",
            "req/s",
            "predict/s",
            "p95 ms",
            "p99 ms",
            "errors",
            "gateway CPU",
            "locust CPU",
            "machine CPU",
            "verdict",
        )
        rows = [head]
        for s in self.steps:
            gw = "-" if s.gateway_cpu_percent is None else f"{s.gateway_cpu_percent:.0f}%"
            rows.append(
                (
                    str(s.users),
                    f"{s.rps:.1f}",
                    f"{s.predict_rps:.1f}",
                    f"{s.p95_ms:.0f}",
                    f"{s.p99_ms:.0f}",
                    f"{s.error_ratio:.2%}",
                    gw,
                    f"{s.locust_cpu_percent:.0f}%",
                    "-" if s.machine_cpu_percent is None else f"{s.machine_cpu_percent:.0f}%",
                    "held" if s.held else "BROKE: " + ", ".join(s.broken),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(
                c.rjust(w) if i < len(head) - 1 else c for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.capacity is None:
            lines.append("\ncapacity: none - the first step already broke an objective")
        else:
            c = self.capacity
            lines.append(
                f"\ncapacity: {c.users} users, {c.rps:.1f} req/s ({c.predict_rps:.1f} valid predictions/s) "
                f"at the last step that held; {self.stopped_because}"
            )
        lines.append(
            "CPU is in % of one core; 'machine' is every process together (others' work competes too)."
        )
        return "\n".join(lines)


def find_capacity(
    session: LoadSession,
    slo: SloFile,
    start_users: int,
    step_users: int,
    step_seconds: float,
    max_users: int,
    spawn_rate: float,
    settle_seconds: float = 1.0,
    on_step: Callable[[StepResult], None] | None = None,
) -> CapacityReport:
    """Run steps of ``start_users``, ``+step_users``, ... up to ``max_users`` until an objective breaks."""
    steps: list[StepResult] = []
    users = start_users
    reason = f"reached --max-users {max_users} with every objective holding"
    while users <= max_users:
        session.ramp(users, max(spawn_rate, float(step_users)))
        session.hold(settle_seconds)
        session.reset()
        session.hold(step_seconds)
        measured = session.measure()
        verdict = evaluate(slo, measured)
        step = StepResult.of(measured, verdict.passed, [r.objective.label for r in verdict.failed])
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if not verdict.passed:
            reason = f"{users} users broke: {', '.join(step.broken)}"
            break
        users += step_users
    held = [s for s in steps if s.held]
    return CapacityReport(steps=steps, capacity=held[-1] if held else None, stopped_because=reason)
