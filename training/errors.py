"""Errors raised by training. Every message says what was wrong and how to fix it.

Exception tree::

    TrainingError            base of everything training raises on purpose
    ├── ConfigError          a configuration value or file is invalid
    ├── DataError            the data cannot be used (missing file/column, NaN, too few rows, ...)
    ├── OutputExistsError    the bundle directory exists and ``overwrite`` is off
    └── ExportError          the ONNX graph could not be built or disagrees with the native model
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "ExportError", "OutputExistsError", "TrainingError"]


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
