"""The check protocol: one small unit per property, in the spirit of scikit-learn's estimator_checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from cascade_registry.artifacts import CheckResult

if TYPE_CHECKING:
    from safety.context import GateContext
    from safety.policy import GatePolicy

__all__ = ["Check", "Status", "outcome"]

Status = Literal["pass", "fail", "error", "skip"]


@runtime_checkable
class Check(Protocol):
    """A single gate check.

    ``name`` is stable (it appears in gate.json, the table and JUnit); ``requires`` names the checks that
    must have passed first (otherwise the harness records ``skip`` with the reason, and the gate fails
    because of the failed prerequisite). ``run`` may raise: the harness records any exception as
    ``error``, never as ``pass``. ``seconds`` is filled in by the harness.
    """

    name: str
    requires: tuple[str, ...]
    description: str

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult: ...


def outcome(
    check: Check | str, status: Status, message: str = "", value: Any = None, limit: Any = None
) -> CheckResult:
    """Build the :class:`CheckResult` of ``check``."""
    name = check if isinstance(check, str) else check.name
    return CheckResult(name=name, status=status, value=value, limit=limit, message=message)
