"""``--serve`` (issue check 10): the real serving stack on this bundle answers 2xx or a clear 4xx only."""

from __future__ import annotations

from cascade_registry.artifacts import CheckResult
from safety.checks.base import outcome
from safety.context import GateContext
from safety.policy import GatePolicy

__all__ = ["ServeCheck"]


class ServeCheck:
    name = "serve"
    requires = ("contract",)
    description = (
        "with --serve: `lockgate serve --canary` answers canary and bad requests with 2xx / clear 4xx"
    )

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        if not ctx.serve:
            return outcome(self, "skip", "not asked (pass --serve)")
        return outcome(self, "error", "the --serve check is not available in this build")
