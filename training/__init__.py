"""Training: calibrated scikit-learn models exported as one ONNX bundle.

from training import TrainConfig, train, TrainingError
path = train(TrainConfig(data="breast_cancer", model="logistic_regression", calibration="sigmoid"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError, DataError, ExportError, OutputExistsError, TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from training.config import TrainConfig as TrainConfig
    from training.trainer import train as train

# loaded on first use, so `lockgate train --help` (training.cli) does not import torch or scikit-learn
_LAZY = {"TrainConfig": "config", "train": "trainer"}

__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "OutputExistsError",
    "TrainConfig",
    "TrainingError",
    "train",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"training.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
