"""``MLPClassifier``: a PyTorch multi-layer perceptron behind the scikit-learn estimator API.

``__init__`` only stores its arguments; ``fit`` validates them and leaves the learned state in attributes
ending in ``_``. Training is a chain of small overridable steps (``_compute_loss``, ``_train_step``,
``_run_epoch``) so a test or a subclass can change one step.

Early stopping keeps a checkpoint per epoch of the monitored validation metric (on disk when
``checkpoint_dir`` is set, always the best one in memory) and restores the best epoch at the end: that is
the model that gets exported. ``history_`` holds the learning curves (train/validation loss and accuracy
per epoch, learning rate).
"""

from __future__ import annotations

import copy
import io
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
from torch import nn

from training.deep.errors import DeepConfigError, DeepTrainingError
from training.deep.initializers import INITIALIZERS, initialize
from training.deep.network import ACTIVATIONS, build_network
from training.deep.optimizers import OPTIMIZERS, make_optimizer, set_learning_rate
from training.deep.schedules import SCHEDULES, learning_rates
from training.deep.weights import WEIGHTS_FILE, weights_bytes

__all__ = ["MLPClassifier", "ScoringNetwork", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``; ``cuda`` (error when absent)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeepConfigError("device", device, "a device present on this machine", "use device='auto'")
        return torch.device("cuda")
    raise DeepConfigError("device", device, "'auto', 'cpu' or 'cuda'")


class ScoringNetwork(nn.Module):
    """Standardize -> MLP -> scores ``S`` [N, C] with ``softmax(S)`` = the class probabilities.

    A sigmoid head (one logit ``z``) becomes the two columns ``[0, z]``, so both heads export alike.
    """

    def __init__(self, body: nn.Module, mean: np.ndarray, scale: np.ndarray, sigmoid_head: bool) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.sigmoid_head = sigmoid_head

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        if self.sigmoid_head:
            return torch.cat([torch.zeros_like(z), z], dim=1)
        return z


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier (softmax head, or sigmoid head for two classes)."""

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (128, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
        initializer: str = "xavier_uniform",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        batch_size: int = 32,
        epochs: int = 100,
        schedule: str = "constant",
        decay: float = 0.0,
        step_size: int = 10,
        head: str = "auto",
        early_stopping: bool = True,
        patience: int = 10,
        validation_fraction: float = 0.15,
        monitor: str = "val_loss",
        class_weight: str | dict[Any, float] | None = None,
        standardize: bool = True,
        checkpoint_dir: str | None = None,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l1 = l1
        self.l2 = l2
        self.initializer = initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.schedule = schedule
        self.decay = decay
        self.step_size = step_size
        self.head = head
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.monitor = monitor
        self.class_weight = class_weight
        self.standardize = standardize
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:  # type: ignore[override]
        def bad(what: str, expected: str, fix: str = "") -> DeepConfigError:
            return DeepConfigError(what, getattr(self, what), expected, fix)

        if not (isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0):
            raise bad("dropout", "a number in [0, 1)", "e.g. dropout=0.2; 0 switches dropout off")
        if self.activation not in ACTIVATIONS:
            raise bad("activation", f"one of {', '.join(ACTIVATIONS)}")
        if self.initializer not in INITIALIZERS:
            raise bad("initializer", f"one of {', '.join(INITIALIZERS)}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", f"one of {', '.join(SCHEDULES)}")
        if self.head not in ("auto", "softmax", "sigmoid"):
            raise bad("head", "'auto', 'softmax' or 'sigmoid'")
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise bad("monitor", "'val_loss' or 'val_accuracy'")
        for name in ("l1", "l2", "decay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise bad(name, "a finite number >= 0")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate < math.inf):
            raise bad("learning_rate", "a finite number > 0", "e.g. learning_rate=0.001")
        for name, low in (("batch_size", 1), ("epochs", 1), ("patience", 1), ("step_size", 1)):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= low):
                raise bad(name, f"an integer >= {low}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise bad("validation_fraction", "a number in (0, 1)", "e.g. 0.15")
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, int | np.integer) or not all(
            isinstance(u, int | np.integer) and u >= 1 for u in sizes
        ):
            raise bad("hidden_layer_sizes", "a tuple of positive integers", "e.g. (128, 128)")
        resolve_device(self.device)

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: Any, y: Any, X_val: Any | None = None, y_val: Any | None = None
    ) -> MLPClassifier:
        """Train; ``X_val``/``y_val`` drive early stopping (default: a stratified split of ``X``)."""
        self._validate_params()
        X, y = check_X_y(X, y, dtype=np.float32)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DeepConfigError("y", f"{len(self.classes_)} class", "at least 2 classes in the labels")
        if self.head == "sigmoid" and len(self.classes_) != 2:
            raise DeepConfigError("head", "sigmoid", "'softmax' for more than 2 classes")
        self.n_features_in_ = X.shape[1]
        self.sigmoid_head_ = len(self.classes_) == 2 and self.head != "softmax"
        if X_val is None and self.early_stopping:
            X, X_val, y_idx, yv_idx = self._split_validation(X, y_idx)
        elif X_val is not None:
            X_val, y_val = check_X_y(X_val, y_val, dtype=np.float32)
            yv_idx = self._encode(y_val)
        else:
            yv_idx = None
        self.device_ = resolve_device(self.device)
        torch.manual_seed(self.random_state)
        self._build(X)
        self._fit_loop(X, y_idx, X_val, yv_idx)
        return self

    def _split_validation(self, X: np.ndarray, y_idx: np.ndarray) -> tuple[np.ndarray, ...]:
        counts = np.bincount(y_idx)
        stratify = y_idx if counts.min() >= 2 else None
        try:
            return tuple(
                train_test_split(
                    X, y_idx, test_size=self.validation_fraction, random_state=self.random_state,
                    stratify=stratify,
                )
            )
        except ValueError as e:
            raise DeepTrainingError(
                f"cannot hold out a validation split of {len(X)} rows: {e}",
                "pass X_val/y_val, raise validation_fraction, or set early_stopping=False",
            ) from None

    def _encode(self, y: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[idx], y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))[:5]
            raise DeepConfigError("y_val", unknown, "only classes seen in the training labels")
        return idx

    def _build(self, X: np.ndarray) -> None:
        mean = X.mean(axis=0) if self.standardize else np.zeros(X.shape[1], np.float32)
        scale = X.std(axis=0) if self.standardize else np.ones(X.shape[1], np.float32)
        scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        n_out = 1 if self.sigmoid_head_ else len(self.classes_)
        body = build_network(
            X.shape[1], n_out, tuple(int(u) for u in self.hidden_layer_sizes), self.activation,
            float(self.dropout), bool(self.batch_norm),
        )
        initialize(body, self.initializer)
        self.network_ = ScoringNetwork(body, mean, scale, self.sigmoid_head_).to(self.device_)
        weights = self._class_weights()
        self._loss_weights = None if weights is None else torch.as_tensor(weights, device=self.device_)

    def _class_weights(self) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            return None  # filled in _fit_loop once the training labels are known
        if isinstance(self.class_weight, dict):
            return np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_], np.float32)
        raise DeepConfigError("class_weight", self.class_weight, "None, 'balanced' or {class: weight}")

    # ------------------------------------------------------------------ overridable steps
    def _data_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (softmax head) or binary cross-entropy on the logit (sigmoid head)."""
        w = self._loss_weights
        if self.sigmoid_head_:
            t = target.to(logits.dtype)
            per_row = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], t, reduction="none")
            return (per_row * w[target]).sum() / w[target].sum() if w is not None else per_row.mean()
        return nn.functional.cross_entropy(logits, target, weight=w)

    def _penalty(self) -> torch.Tensor:
        total = torch.zeros((), device=self.device_)
        if self.l1 or self.l2:
            for layer in self.network_.modules():
                if isinstance(layer, nn.Linear):
                    if self.l1:
                        total = total + self.l1 * layer.weight.abs().sum()
                    if self.l2:
                        total = total + self.l2 * (layer.weight**2).sum()
        return total

    def _compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The objective the optimizer minimizes: data loss + L1/L2 penalty."""
        return self._data_loss(logits, target) + self._penalty()

    def _train_step(self, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = self._compute_loss(self.network_.logits(xb), yb)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def _run_epoch(self, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
                   rng: np.random.Generator) -> float:
        self.network_.train()
        order = torch.as_tensor(rng.permutation(len(X)), device=self.device_)
        losses: list[float] = []
        for start in range(0, len(X), int(self.batch_size)):
            idx = order[start : start + int(self.batch_size)]
            if self.batch_norm and len(idx) < 2:
                continue  # batch norm cannot normalize a single row
            losses.append(self._train_step(optimizer, X[idx], y[idx]))
        return float(np.mean(losses)) if losses else float("nan")

    def _evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        self.network_.eval()
        with torch.no_grad():
            logits = self.network_.logits(X)
            loss = float(self._data_loss(logits, y))
            pred = (logits[:, 0] > 0).long() if self.sigmoid_head_ else logits.argmax(dim=1)
            return loss, float((pred == y).float().mean())

    # ------------------------------------------------------------------ loop
    def _fit_loop(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None,
                  y_val: np.ndarray | None) -> None:
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=len(self.classes_)).astype(np.float32)
            self._loss_weights = torch.as_tensor(
                len(y) / (len(counts) * np.maximum(counts, 1)), device=self.device_
            )
        Xt = torch.as_tensor(X, device=self.device_)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device_)
        has_val = X_val is not None and y_val is not None
        if has_val:
            Xv = torch.as_tensor(X_val, device=self.device_)
            yv = torch.as_tensor(y_val, dtype=torch.long, device=self.device_)
        optimizer = make_optimizer(self.optimizer, self.network_.parameters(), self.learning_rate,
                                   self.momentum)
        rates = learning_rates(self.schedule, self.learning_rate, self.epochs, self.decay, self.step_size)
        rng = np.random.default_rng(self.random_state)
        self.history_: list[dict[str, float]] = []
        best_score, best_state, best_epoch, waited = math.inf, None, -1, 0
        self.stop_reason_ = "reached the epoch limit"
        for epoch, rate in enumerate(rates):
            started = time.perf_counter()
            set_learning_rate(optimizer, rate)
            train_objective = self._run_epoch(optimizer, Xt, yt, rng)
            train_loss, train_acc = self._evaluate(Xt, yt)
            row = {"epoch": epoch, "learning_rate": rate, "train_objective": train_objective,
                   "train_loss": train_loss, "train_accuracy": train_acc}
            if has_val:
                row["val_loss"], row["val_accuracy"] = self._evaluate(Xv, yv)
            row["seconds"] = time.perf_counter() - started
            self.history_.append(row)
            if not math.isfinite(train_objective) or not math.isfinite(train_loss):
                self.stop_reason_ = f"loss became non-finite at epoch {epoch}"
                break
            score = self._monitored(row)
            if self.checkpoint_dir:
                self._save_checkpoint(epoch)
            if score < best_score:
                best_score, best_epoch, waited = score, epoch, 0
                best_state = copy.deepcopy(self.network_.state_dict())
            else:
                waited += 1
                if self.early_stopping and has_val and waited >= self.patience:
                    self.stop_reason_ = f"no improvement of {self.monitor} for {self.patience} epochs"
                    break
        if best_state is None:
            raise DeepTrainingError(
                "training diverged in the first epoch (loss is NaN or infinite)",
                "lower learning_rate, check the inputs for extreme values, "
                "or use initializer='xavier_uniform'",
            )
        self.network_.load_state_dict(best_state)
        self.network_.eval()
        self.best_epoch_ = best_epoch
        self.best_score_ = best_score if self.monitor == "val_loss" or not has_val else -best_score
        self.n_epochs_ = len(self.history_)

    def _monitored(self, row: dict[str, float]) -> float:
        if "val_loss" not in row:
            return row["train_loss"]
        return row["val_loss"] if self.monitor == "val_loss" else -row["val_accuracy"]

    def _save_checkpoint(self, epoch: int) -> None:
        folder = Path(str(self.checkpoint_dir))
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(self.network_.state_dict(), buf)
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".pt", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, folder / f"epoch-{epoch:04d}.pt")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ card extras
    def card_details(self) -> dict[str, Any]:
        """Extras for ``card.details``: the learning curves and how training stopped."""
        from training.deep.curves import curves_details

        check_is_fitted(self, "network_")
        return {
            "learning_curves": curves_details(self.history_, self.best_epoch_, self.stop_reason_),
            "learning_curves_png": "learning_curves.png",
            "device": str(self.device_),
            "head": "sigmoid" if self.sigmoid_head_ else "softmax",
        }

    def card_files(self) -> dict[str, bytes]:
        """Extra bundle files: ``learning_curves.png`` and ``weights.pt`` (:mod:`training.deep.weights`)."""
        from training.deep.curves import plot_learning_curves

        check_is_fitted(self, "network_")
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_learning_curves(self.history_, self.best_epoch_, Path(tmp) / "learning_curves.png")
            return {"learning_curves.png": path.read_bytes(), WEIGHTS_FILE: weights_bytes(self)}

    # ------------------------------------------------------------------ predict
    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_features_in_:
            raise DeepConfigError(
                "X", f"{X.shape[1]} columns", f"{self.n_features_in_} columns as in fit"
            )
        return X

    def decision_scores(self, X: Any) -> np.ndarray:
        """Scores ``S`` [N, C] (float64) with ``softmax(S)`` = ``predict_proba``; what the calibrator sees."""
        X = self._check_X(X)
        self.network_.eval()
        with torch.no_grad():
            out = self.network_(torch.as_tensor(X, device=self.device_))
        return out.cpu().numpy().astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        S = self.decision_scores(X)
        S = S - S.max(axis=1, keepdims=True)
        E = np.exp(S)
        return E / E.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_scores(X), axis=1)]

