"""The pre-deploy safety gate: ``lockgate check BUNDLE``.

Reads only ``model.onnx``, ``card.json`` and ``reference.npz``; every parse and execution of the model
happens in a resource-limited child process (:mod:`safety.sandbox`), so hostile files are contained.

    from safety import run_gate, GatePolicy
    report = run_gate(bundle_dir, GatePolicy())   # -> cascade_registry.artifacts.GateReport
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from safety.errors import GateUsageError, PolicyError, ReferenceDataError, SafetyError, SandboxError

if TYPE_CHECKING:  # pragma: no cover
    from safety.checks import Check as Check
    from safety.checks import default_checks as default_checks
    from safety.context import GateContext as GateContext
    from safety.harness import run_checks as run_checks
    from safety.harness import run_gate as run_gate
    from safety.policy import GatePolicy as GatePolicy
    from safety.policy import load_policy as load_policy
    from safety.report import format_table as format_table
    from safety.report import junit_xml as junit_xml

# loaded on first use, so `lockgate check --help` (safety.cli) imports neither numpy, onnx and the checks
# nor pydantic (the policy and report models)
_LAZY = {
    "Check": "checks",
    "default_checks": "checks",
    "GateContext": "context",
    "GatePolicy": "policy",
    "format_table": "report",
    "junit_xml": "report",
    "load_policy": "policy",
    "run_checks": "harness",
    "run_gate": "harness",
}

__all__ = [
    "Check",
    "GateContext",
    "GatePolicy",
    "GateUsageError",
    "PolicyError",
    "ReferenceDataError",
    "SafetyError",
    "SandboxError",
    "default_checks",
    "format_table",
    "junit_xml",
    "load_policy",
    "run_checks",
    "run_gate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'safety' has no attribute {name!r}")
    return getattr(importlib.import_module(f"safety.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
