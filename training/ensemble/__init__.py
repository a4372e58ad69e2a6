"""Ensembles that ship as ONE calibrated ONNX graph.

- :class:`AveragingEnsemble`, :class:`VotingEnsemble` (tie policy ``random`` with seed or ``abstain``)
- :class:`StackingEnsemble` (meta-model on out-of-fold predictions from k >= 10 blocks, CV-tuned)
- :class:`BalancedEnsemble` (H resampled balanced datasets for imbalanced data)
- :func:`export_ensemble` / :func:`ensemble_exporter`: the graphs; ``family`` registers them with
  ``training.families`` as ``averaging``, ``majority_vote``, ``stacking``, ``balanced_ensemble``.
"""

from training.ensemble import family as _family  # noqa: E402,F401,I001  registers the ensemble families
from training.ensemble.balanced import BalancedEnsemble, balanced_chunks
from training.ensemble.combiners import AbstainError, AveragingEnsemble, VotingEnsemble
from training.ensemble.graph import ensemble_exporter, ensemble_scores, export_ensemble
from training.ensemble.stacking import StackingEnsemble, fold_plan, out_of_fold_probabilities

__all__ = [
    "AbstainError",
    "AveragingEnsemble",
    "BalancedEnsemble",
    "StackingEnsemble",
    "VotingEnsemble",
    "balanced_chunks",
    "ensemble_exporter",
    "ensemble_scores",
    "export_ensemble",
    "fold_plan",
    "out_of_fold_probabilities",
]
