"""Errors of the deep-learning, ensemble, shift and analysis parts of ``training``.

Both derive from the package base :class:`training.errors.TrainingError` (``problem`` + ``fix``)::

    TrainingError
    └── ConfigError
        └── DeepConfigError     an impossible setting (which parameter, what came, what is allowed)
    └── DeepTrainingError       training or analysis could not proceed (diverged, too few rows, ...)
"""

from __future__ import annotations

from typing import Any

from training.errors import ConfigError, TrainingError

__all__ = ["DeepConfigError", "DeepTrainingError"]


class DeepTrainingError(TrainingError):
    """Training, ensembling or analysis could not proceed; the message says why and how to fix it."""


class DeepConfigError(ConfigError):
    """An impossible setting: ``what`` got ``value`` but expected ``expected``; ``fix`` says how to fix it."""

    def __init__(self, what: str, value: Any, expected: str, fix: str = "") -> None:
        self.what, self.value, self.expected = what, value, expected
        super().__init__(f"{what}={value!r} is not allowed: expected {expected}", fix)
