"""``DeepClassifier``: the CNN, GRU, LSTM and multi-input topologies, trained by the MLP's loop.

The estimator is an :class:`MLPClassifier` whose network is built from the data's inputs
(:class:`cascade_registry.artifacts.InputSpec`, see :mod:`training.input_sets`) instead of one MLP:
one encoder per input (:mod:`training.deep.encoders`), the embeddings concatenated, one head (the MLP's
``hidden_layer_sizes``). Columns no input claims form one more, tabular, input. Everything else —
optimizer, schedule, early stopping with checkpoints, learning curves, the one-batch overfit check,
export and calibration — is the MLP's, unchanged.

``topology`` says what the data must hold: ``cnn`` an image, ``gru`` and ``lstm`` a token sequence
(read by a GRU or an LSTM), ``multi`` at least two inputs (a sequence read by a GRU). The trainer hands
the data's inputs and column names over (``training.families.bind_inputs``); used directly, pass
``inputs`` (and ``feature_names`` when X holds more columns than the inputs list).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cascade_registry.artifacts import InputSpec
from training.deep.encoders import (
    ImageEncoder,
    InputGroup,
    MultiInputNetwork,
    SequenceEncoder,
    TabularEncoder,
)
from training.deep.errors import DeepConfigError
from training.deep.estimator import MLPClassifier, ScoringNetwork
from training.deep.initializers import initialize
from training.deep.network import build_network

__all__ = ["TOPOLOGIES", "DeepClassifier", "input_groups"]

#: topology -> (what it needs, the input kind it needs or None for "at least two inputs")
TOPOLOGIES: dict[str, str | None] = {"cnn": "image", "gru": "sequence", "lstm": "sequence", "multi": None}


def input_groups(inputs: tuple[InputSpec, ...], feature_names: tuple[str, ...], n_features: int
                 ) -> list[InputGroup]:
    """Each input's column positions in X; the columns no input names become one tabular input."""
    names = list(feature_names) or [c for spec in inputs for c in spec.columns]
    if not names:  # no structure given: one table
        names = [f"x{i}" for i in range(n_features)]
    if len(names) != n_features:
        raise DeepConfigError("feature_names", f"{len(names)} names",
                              f"one name per column of X ({n_features})",
                              "pass feature_names, or inputs whose columns are X's columns in order")
    where = {name: i for i, name in enumerate(names)}
    groups, claimed = [], set()
    for spec in inputs:
        missing = [c for c in spec.columns if c not in where]
        if missing:
            raise DeepConfigError("inputs", spec.name, f"columns present in X (missing {missing[:3]})")
        positions = tuple(where[c] for c in spec.columns)
        claimed.update(positions)
        groups.append(InputGroup(
            name=spec.name, kind=spec.kind, positions=positions,
            shape=tuple(spec.shape) if spec.shape else (0, 0, 0),  # type: ignore[arg-type]
            value_range=tuple(spec.value_range) if spec.value_range else (0.0, 1.0),  # type: ignore[arg-type]
            vocabulary_size=len(spec.vocabulary) + 2,
        ))
    rest = tuple(i for i in range(n_features) if i not in claimed)
    if rest:
        groups.append(InputGroup(name="table", kind="tabular", positions=rest))
    return groups


class DeepClassifier(MLPClassifier):
    """A CNN / GRU / LSTM / multi-input classifier; the MLP's parameters apply to its head and training."""

    def __init__(
        self,
        topology: str = "cnn",
        inputs: tuple[InputSpec, ...] = (),
        feature_names: tuple[str, ...] = (),
        channels: int = 16,
        kernel_size: int = 3,
        embedding_dim: int = 16,
        recurrent_units: int = 32,
        encoder_units: tuple[int, ...] = (32,),
        **mlp: Any,
    ) -> None:
        mlp.setdefault("hidden_layer_sizes", (64,))
        super().__init__(**mlp)
        self.topology = topology
        self.inputs = inputs
        self.feature_names = feature_names
        self.channels = channels
        self.kernel_size = kernel_size
        self.embedding_dim = embedding_dim
        self.recurrent_units = recurrent_units
        self.encoder_units = encoder_units

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Its own parameters and every :class:`MLPClassifier` one (``get_params``, ``clone``)."""
        return sorted(set(super()._get_param_names()) | set(MLPClassifier._get_param_names()))

    def _validate_params(self) -> None:  # type: ignore[override]
        super()._validate_params()
        if self.topology not in TOPOLOGIES:
            raise DeepConfigError("topology", self.topology, f"one of {', '.join(TOPOLOGIES)}")
        for name in ("channels", "embedding_dim", "recurrent_units"):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and 1 <= value <= 1024):
                raise DeepConfigError(name, value, "an integer in [1, 1024]")
        if not (isinstance(self.kernel_size, int | np.integer) and self.kernel_size in (1, 3, 5)):
            raise DeepConfigError("kernel_size", self.kernel_size, "1, 3 or 5 (odd: same padding)")
        units = self.encoder_units
        if not units or not all(isinstance(u, int | np.integer) and u >= 1 for u in units):
            raise DeepConfigError("encoder_units", units, "a non-empty tuple of positive integers")

    def _groups(self, n_features: int) -> list[InputGroup]:
        groups = input_groups(tuple(self.inputs), tuple(self.feature_names), n_features)
        need = TOPOLOGIES[self.topology]
        kinds = [g.kind for g in groups]
        if (need is None and len(groups) < 2) or (need is not None and need not in kinds):
            what = {None: "at least two inputs", "image": "an image input"}.get(need, f"a {need} input")
            raise DeepConfigError(
                "topology", self.topology, f"data with {what} (this data has: {', '.join(kinds)})",
                "use --data digits for cnn, sequences for gru or lstm, mixed_inputs for multi, or --model "
                "mlp",
            )
        return groups

    def _encoder(self, group: InputGroup, X: np.ndarray) -> torch.nn.Module:
        if group.kind == "image":
            return ImageEncoder(group, int(self.channels), int(self.kernel_size))
        if group.kind == "sequence":
            cell = "lstm" if self.topology == "lstm" else "gru"
            return SequenceEncoder(group, int(self.embedding_dim), int(self.recurrent_units), cell)
        cols = X[:, list(group.positions)]
        mean = cols.mean(axis=0) if self.standardize else np.zeros(cols.shape[1], np.float32)
        scale = cols.std(axis=0) if self.standardize else np.ones(cols.shape[1], np.float32)
        scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        return TabularEncoder(group, mean, scale, tuple(int(u) for u in self.encoder_units), self.activation,
                              float(self.dropout))

    def _build(self, X: np.ndarray) -> None:
        encoders = [self._encoder(g, X) for g in self._groups(X.shape[1])]
        n_out = 1 if self.sigmoid_head_ else len(self.classes_)
        head = build_network(sum(e.width for e in encoders), n_out,
                             tuple(int(u) for u in self.hidden_layer_sizes), self.activation,
                             float(self.dropout), bool(self.batch_norm))
        initialize(head, self.initializer)
        n = X.shape[1]
        body = MultiInputNetwork(encoders, head)
        self.network_ = ScoringNetwork(body, np.zeros(n, np.float32), np.ones(n, np.float32),
                                       self.sigmoid_head_).to(self.device_)
        weights = self._class_weights()
        self._loss_weights = None if weights is None else torch.as_tensor(weights, device=self.device_)

    def card_details(self) -> dict[str, Any]:
        """The MLP's extras plus the topology: each input's encoder and the embedding widths."""
        details = super().card_details()
        details["topology"] = {
            "name": self.topology,
            "encoders": [f"{g.name} ({g.kind}): {type(e).__name__}, {e.width} wide"
                         for g, e in zip(self._groups(self.n_features_in_), self.network_.body.encoders,
                                         strict=True)],
            "head": f"concatenated embeddings -> hidden {list(self.hidden_layer_sizes)} -> logits",
        }
        return details
