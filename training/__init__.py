"""Training: calibrated scikit-learn models exported as one ONNX bundle.

from training import TrainConfig, train, TrainingError
path = train(TrainConfig(data="breast_cancer", model="logistic_regression", calibration="sigmoid"))
"""

from training.config import TrainConfig
from training.errors import ConfigError, DataError, ExportError, OutputExistsError, TrainingError
from training.trainer import train

__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "OutputExistsError",
    "TrainConfig",
    "TrainingError",
    "train",
]
