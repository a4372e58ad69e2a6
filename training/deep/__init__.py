"""Deep models for lockgate: a PyTorch MLP behind the scikit-learn API, exported to ONE ONNX graph.

- :class:`MLPClassifier` (``estimator``): layers/units, activation, dropout, batch norm, L1/L2,
  initializers (``initializers``), optimizers (``optimizers``), learning-rate schedules (``schedules``),
  early stopping with per-epoch checkpoints and learning curves (``curves``).
- :func:`overfit_one_batch` (``overfit``): the one-batch sanity check with its diagnosis.
- :class:`DeepClassifier` (``topology``): the CNN / GRU / multi-input topologies (one encoder per input,
  :mod:`training.deep.encoders`) on the MLP's training loop; families ``cnn``, ``gru``, ``multi``.
- :func:`export_mlp` (``export``): torch.onnx.export + a :mod:`training.calibration` calibrator +
  ``label``/``probabilities``; the only part of ``training`` that imports torch.
"""

from training.deep.curves import curves_details, plot_learning_curves
from training.deep.errors import DeepConfigError, DeepTrainingError
from training.deep.estimator import MLPClassifier
from training.deep.export import export_mlp, mlp_exporter, mlp_scores_onnx, onnx_bytes
from training.deep.initializers import INITIALIZERS
from training.deep.optimizers import OPTIMIZERS
from training.deep.overfit import OverfitReport, format_overfit_report, overfit_one_batch
from training.deep.schedules import SCHEDULES, learning_rate_at, learning_rates
from training.deep.topology import TOPOLOGIES, DeepClassifier

__all__ = [
    "INITIALIZERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TOPOLOGIES",
    "DeepClassifier",
    "DeepConfigError",
    "DeepTrainingError",
    "MLPClassifier",
    "OverfitReport",
    "curves_details",
    "export_mlp",
    "format_overfit_report",
    "learning_rate_at",
    "learning_rates",
    "mlp_exporter",
    "mlp_scores_onnx",
    "onnx_bytes",
    "overfit_one_batch",
    "plot_learning_curves",
]
from training.deep import family as _family  # noqa: E402,F401  registers 'mlp' with training.families
from training.deep import topology_family as _topologies  # noqa: E402,F401  registers cnn, gru, multi
