"""Multi-output MLP: one shared encoder, a classification head plus a second head (classification, or a
regression bounded to a range), trained on ``gamma * C1 + (1 - gamma) * C2``.

The network is the MLP's own (:func:`training.deep.network.build_network`) whose last linear layer is
``C1 + K2`` wide: its column blocks are the heads (a block of a linear layer is a linear layer of its
own), so every part of :class:`~training.deep.estimator.MLPClassifier` — standardization, optimizers,
schedules, early stopping on the validation cost, checkpoints, learning curves — is reused unchanged.
The second target rides along as the last column of ``X`` inside the training loop (the loop shuffles
rows, never columns), and only the loss and the evaluation steps are overridden.

- classification head 2: ``C2 = cross-entropy`` on its ``K2 = n_classes`` logits;
- regression head 2 (``K2 = 1``): ``value = low + (high - low) * sigmoid(z)``, always inside
  ``[low, high]``, fitted with the binary cross-entropy of ``sigmoid(z)`` against the target scaled to
  ``[0, 1]`` (a proper loss for a bounded target, on the scale of C1).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from training.deep.errors import DeepConfigError
from training.deep.estimator import MLPClassifier, ScoringNetwork
from training.deep.initializers import initialize
from training.deep.network import build_network

__all__ = ["MultiHeadNetwork", "MultiOutputMLP", "make_two_targets"]

HeadKind = Literal["classification", "regression"]


class MultiHeadNetwork(ScoringNetwork):
    """Standardize the first ``n_features`` columns -> shared MLP -> ``[head 1 logits | head 2]``."""

    def __init__(self, body: nn.Module, mean: np.ndarray, scale: np.ndarray, n_features: int) -> None:
        super().__init__(body, mean, scale, sigmoid_head=False)
        self.n_features = n_features

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x[:, : self.n_features] - self.mean) / self.scale)


class _ExportedHeads(nn.Module):
    """What ONNX gets: ``input`` [N, F] -> head 1 scores [N, C1] and head 2 scores [N, K2]."""

    def __init__(self, network: MultiHeadNetwork, c1: int) -> None:
        super().__init__()
        self.network, self.c1 = network, c1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.network.logits(x)
        return out[:, : self.c1], out[:, self.c1 :]


class MultiOutputMLP(MLPClassifier):
    """:class:`MLPClassifier` with a second head; ``fit(X, y, z, X_val, y_val, z_val)``.

    ``y`` is head 1's labels; ``z`` head 2's class indices 0..K2-1 (``kind2="classification"``,
    ``n_classes2``) or values (``kind2="regression"``, bounded by ``range2``). ``predict_proba`` and
    ``predict`` answer head 1; :meth:`head2_scores` and :meth:`predict_head2` answer head 2.
    """

    def __init__(self, gamma: float = 0.5, kind2: HeadKind = "classification", n_classes2: int = 2,
                 range2: tuple[float, float] = (0.0, 1.0), **mlp_params: Any) -> None:
        super().__init__(**mlp_params)
        self.gamma = gamma
        self.kind2 = kind2
        self.n_classes2 = n_classes2
        self.range2 = range2

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted({*MLPClassifier._get_param_names(), "gamma", "kind2", "n_classes2", "range2"})

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, z: Any = None, X_val: Any = None, y_val: Any = None,  # type: ignore[override]
            z_val: Any = None) -> MultiOutputMLP:
        if not (isinstance(self.gamma, int | float) and 0.0 <= self.gamma <= 1.0):
            raise DeepConfigError("gamma", self.gamma, "a number in [0, 1]", "e.g. gamma=0.5")
        if self.kind2 not in ("classification", "regression"):
            raise DeepConfigError("kind2", self.kind2, "'classification' or 'regression'")
        low, high = (float(v) for v in self.range2)
        if self.kind2 == "regression" and not (np.isfinite([low, high]).all() and low < high):
            raise DeepConfigError("range2", self.range2, "(low, high) with low < high")
        if z is None:
            raise DeepConfigError("z", None, "the second target, one value per row of X")
        X = np.asarray(X, np.float32)
        self.n_head_features_ = X.shape[1]
        Xa = self._with_target(X, z)
        Xv = None if X_val is None else self._with_target(np.asarray(X_val, np.float32), z_val)
        super().fit(Xa, y, Xv, y_val)
        self.n_features_in_ = self.n_head_features_
        return self

    def _with_target(self, X: np.ndarray, z: Any) -> np.ndarray:
        z = np.asarray(z, np.float64).reshape(-1)
        if len(z) != len(X) or not np.isfinite(z).all():
            raise DeepConfigError("z", f"{len(z)} values", f"{len(X)} finite values, one per row of X")
        if self.kind2 == "classification" and not (np.all(z == np.round(z)) and z.min() >= 0
                                                   and z.max() < self.n_classes2):
            raise DeepConfigError("z", "values", f"class indices 0..{self.n_classes2 - 1}")
        return np.column_stack([X, z]).astype(np.float32)

    def _width2(self) -> int:
        return int(self.n_classes2) if self.kind2 == "classification" else 1

    def _build(self, X: np.ndarray) -> None:
        F = self.n_head_features_
        features = X[:, :F]
        mean = features.mean(axis=0) if self.standardize else np.zeros(F, np.float32)
        scale = features.std(axis=0) if self.standardize else np.ones(F, np.float32)
        scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        self.sigmoid_head_ = False  # head 1 is always a softmax head here (2 columns for binary)
        body = build_network(F, len(self.classes_) + self._width2(),
                             tuple(int(u) for u in self.hidden_layer_sizes), self.activation,
                             float(self.dropout), bool(self.batch_norm))
        initialize(body, self.initializer)
        self.network_ = MultiHeadNetwork(body, mean, scale, F).to(self.device_)
        weights = self._class_weights()
        self._loss_weights = None if weights is None else torch.as_tensor(weights, device=self.device_)

    # ------------------------------------------------------------------ overridden steps
    def _costs(self, out: torch.Tensor, y: torch.Tensor, x: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        c1 = len(self.classes_)
        cost1 = nn.functional.cross_entropy(out[:, :c1], y, weight=self._loss_weights)
        z = x[:, self.n_head_features_]
        if self.kind2 == "classification":
            cost2 = nn.functional.cross_entropy(out[:, c1:], z.long())
        else:
            low, high = (float(v) for v in self.range2)
            t = ((z - low) / (high - low)).clamp(0.0, 1.0)
            cost2 = nn.functional.binary_cross_entropy_with_logits(out[:, c1], t)
        return cost1, cost2

    def _combined(self, out: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        cost1, cost2 = self._costs(out, y, x)
        return float(self.gamma) * cost1 + (1.0 - float(self.gamma)) * cost2

    def _train_step(self, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = self._combined(self.network_.logits(xb), yb, xb) + self._penalty()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def _evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """The combined cost (what early stopping watches) and head 1's accuracy."""
        self.network_.eval()
        with torch.no_grad():
            out = self.network_.logits(X)
            loss = float(self._combined(out, y, X))
            return loss, float((out[:, : len(self.classes_)].argmax(dim=1) == y).float().mean())

    # ------------------------------------------------------------------ answers
    def _outputs(self, X: Any) -> np.ndarray:
        X = self._check_X(X)
        self.network_.eval()
        with torch.no_grad():
            out = self.network_.logits(torch.as_tensor(X, device=self.device_))
        return out.cpu().numpy().astype(np.float64)

    def decision_scores(self, X: Any) -> np.ndarray:
        """Head 1's scores ``S`` [N, C1] (``softmax(S)`` = ``predict_proba``)."""
        return self._outputs(X)[:, : len(self.classes_)]

    def head2_scores(self, X: Any) -> np.ndarray:
        """Head 2's logits [N, K2] (classification) or pre-sigmoid ``z`` [N, 1] (regression)."""
        return self._outputs(X)[:, len(self.classes_) :]

    def predict_head2(self, X: Any) -> np.ndarray:
        """Head 2's class indices, or its values inside ``range2``."""
        s = self.head2_scores(X)
        if self.kind2 == "classification":
            return s.argmax(axis=1)
        low, high = (float(v) for v in self.range2)
        return low + (high - low) / (1.0 + np.exp(-s[:, 0]))

    def exported_module(self) -> nn.Module:
        """The module :mod:`training.deep.multi_output_export` hands to ``torch.onnx.export``."""
        check_is_fitted(self, "network_")
        return _ExportedHeads(self.network_, len(self.classes_))

    def card_files(self) -> dict[str, bytes]:
        """``learning_curves.png`` only: ``weights.pt`` describes single-head networks (``--init-from``)."""
        files = super().card_files()
        return {k: v for k, v in files.items() if k.endswith(".png")}


def make_two_targets(n: int = 600, seed: int = 0) -> dict[str, np.ndarray]:
    """A generated table with a known rule: six features ``x0..x5`` ~ U(-1, 1);

    - ``shape`` (3 classes) = ``["round", "square", "star"][argmax(x0 + 0.5 x3, x1 - 0.5 x4, x2)]``;
    - ``size`` in [0, 10] = ``10 * sigmoid(2 x3 - 1.5 x4 + x5)`` + N(0, 0.1) noise, clipped to [0, 10].
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 6))
    shape = np.array(["round", "square", "star"])[
        np.argmax(np.column_stack([X[:, 0] + 0.5 * X[:, 3], X[:, 1] - 0.5 * X[:, 4], X[:, 2]]), axis=1)]
    size = 10.0 / (1.0 + np.exp(-(2 * X[:, 3] - 1.5 * X[:, 4] + X[:, 5]))) + rng.normal(0, 0.1, n)
    table = {f"x{j}": np.round(X[:, j], 4) for j in range(6)}
    return {**table, "shape": shape, "size": np.round(np.clip(size, 0.0, 10.0), 4)}
