"""The pre-deploy safety gate: ``lockgate check BUNDLE``.

Reads only ``model.onnx``, ``card.json`` and ``reference.npz``; every parse and execution of the model
happens in a resource-limited child process (:mod:`safety.sandbox`), so hostile files are contained.

    from safety import run_gate, GatePolicy
    report = run_gate(bundle_dir, GatePolicy())   # -> cascade_registry.artifacts.GateReport
"""

from safety.checks import Check, default_checks
from safety.context import GateContext
from safety.errors import GateUsageError, PolicyError, ReferenceDataError, SafetyError, SandboxError
from safety.harness import run_checks, run_gate
from safety.policy import GatePolicy, load_policy
from safety.report import format_table, junit_xml

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
