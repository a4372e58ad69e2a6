"""Parameter initializers for the MLP's weight matrices; biases always start at zero."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from training.deep.errors import DeepConfigError

__all__ = ["INITIALIZERS", "initialize"]

_Init = Callable[[torch.Tensor], object]

_WEIGHT_INIT: dict[str, _Init] = {
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
    "normal": lambda w: nn.init.normal_(w, mean=0.0, std=0.05),
    "uniform": lambda w: nn.init.uniform_(w, -0.05, 0.05),
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
}
INITIALIZERS: tuple[str, ...] = tuple(_WEIGHT_INIT)


def initialize(module: nn.Module, name: str) -> None:
    """Initialize every ``nn.Linear`` in ``module`` with ``name``; biases zero (seed: torch.manual_seed)."""
    if name not in _WEIGHT_INIT:
        raise DeepConfigError("initializer", name, f"one of {', '.join(INITIALIZERS)}")
    init = _WEIGHT_INIT[name]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                init(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
