"""The MLP as a ``torch.nn.Module``: [Linear -> (BatchNorm) -> activation -> (Dropout)] x layers -> Linear."""

from __future__ import annotations

from torch import nn

from training.deep.errors import DeepConfigError

__all__ = ["ACTIVATIONS", "build_network"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def build_network(
    n_features: int,
    n_outputs: int,
    hidden_layer_sizes: tuple[int, ...],
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """A plain feed-forward network producing ``n_outputs`` logits."""
    if activation not in ACTIVATIONS:
        raise DeepConfigError("activation", activation, f"one of {', '.join(ACTIVATIONS)}")
    if any(int(u) != u or u < 1 for u in hidden_layer_sizes):
        raise DeepConfigError(
            "hidden_layer_sizes", hidden_layer_sizes, "positive integers", "e.g. (128, 128)"
        )
    layers: list[nn.Module] = []
    width = n_features
    for units in hidden_layer_sizes:
        layers.append(nn.Linear(width, int(units)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(int(units)))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(units)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)
