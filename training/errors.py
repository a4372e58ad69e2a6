"""Errors raised by training. Every message says what was wrong and how to fix it.

Exception tree::

    TrainingError            base of everything training raises on purpose
    ├── ConfigError          a configuration value or file is invalid
    │   └── DeepConfigError  an impossible setting (which parameter, what came, what is allowed)
    ├── DataError            the data cannot be used (missing file/column, NaN, too few rows, ...)
    ├── DeepTrainingError    fitting, ensembling or analysis could not proceed (diverged, too few rows)
    ├── OutputExistsError    the bundle directory exists and ``overwrite`` is off
    └── ExportError          the ONNX graph could not be built or disagrees with the native model
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "DataError",
    "DeepConfigError",
    "DeepTrainingError",
    "ExportError",
    "OutputExistsError",
    "TrainingError",
]


class TrainingError(Exception):
    """Base of training errors. ``problem`` says what is wrong, ``fix`` how to fix it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


class ConfigError(TrainingError):
    """A configuration value or configuration file is invalid."""


class DataError(TrainingError):
    """The data cannot be used for training."""


class OutputExistsError(TrainingError):
    """The bundle directory already exists."""


class ExportError(TrainingError):
    """The ONNX export failed or does not reproduce the native model."""


class DeepTrainingError(TrainingError):
    """Fitting, ensembling or analysis could not proceed; the message says why and how to fix it."""


class DeepConfigError(ConfigError):
    """An impossible setting: ``what`` got ``value`` but expected ``expected``; ``fix`` says how to fix it."""

    def __init__(self, what: str, value: Any, expected: str, fix: str = "") -> None:
        self.what, self.value, self.expected = what, value, expected
        super().__init__(f"{what}={value!r} is not allowed: expected {expected}", fix)
