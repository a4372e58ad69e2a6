"""The battery of gate checks, in the order the harness runs them."""

from __future__ import annotations

from safety.checks.base import Check, outcome
from safety.checks.calibration import CalibrationCheck
from safety.checks.card import CardCompletenessCheck, CardSchemaCheck
from safety.checks.file import (
    ChecksumCheck,
    DomainCheck,
    ExternalDataCheck,
    OnnxCheckerCheck,
    OpsetCheck,
    ParseCheck,
    SizeCheck,
)
from safety.checks.inputs import BadInputsCheck
from safety.checks.reference import ParityCheck, QualityCheck, RegressionCheck
from safety.checks.runtime import ContractCheck, DeterminismCheck, LoadCheck, ResourcesCheck

__all__ = ["Check", "checks_for", "default_checks", "outcome"]


def default_checks() -> list[Check]:
    """One instance of every check, prerequisites first."""
    from safety.checks.serve import ServeCheck

    return [
        SizeCheck(),
        CardSchemaCheck(),
        ChecksumCheck(),
        ParseCheck(),
        ExternalDataCheck(),
        OnnxCheckerCheck(),
        OpsetCheck(),
        DomainCheck(),
        LoadCheck(),
        ContractCheck(),
        BadInputsCheck(),
        ResourcesCheck(),
        DeterminismCheck(),
        ParityCheck(),
        QualityCheck(),
        CalibrationCheck(),
        RegressionCheck(),
        CardCompletenessCheck(),
        ServeCheck(),
    ]


def checks_for(targets: list[str] | tuple[str, ...]) -> list[Check]:
    """The checks named in ``targets`` and every check they require (transitively), in battery order."""
    battery = default_checks()
    by_name = {c.name: c for c in battery}
    wanted: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].requires)
    return [c for c in battery if c.name in wanted]
