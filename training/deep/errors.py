"""Errors of the deep-learning, ensemble, shift and analysis parts of ``training`` (defined in
:mod:`training.errors`, re-exported here)::

    TrainingError
    └── ConfigError
        └── DeepConfigError     an impossible setting (which parameter, what came, what is allowed)
    └── DeepTrainingError       training or analysis could not proceed (diverged, too few rows, ...)
"""

from __future__ import annotations

from training.errors import DeepConfigError, DeepTrainingError

__all__ = ["DeepConfigError", "DeepTrainingError"]
