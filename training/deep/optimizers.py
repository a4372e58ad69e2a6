"""Optimizers: minibatch SGD, SGD with momentum, RMSProp and Adam (the default)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from training.deep.errors import DeepConfigError

__all__ = ["OPTIMIZERS", "make_optimizer", "set_learning_rate"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "rmsprop", "adam")


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], learning_rate: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` (``momentum`` is used by ``momentum`` only)."""
    if name not in OPTIMIZERS:
        raise DeepConfigError("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
    if not 0.0 <= momentum < 1.0:
        raise DeepConfigError("momentum", momentum, "a number in [0, 1)", "e.g. momentum=0.9")
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate)
    if name == "momentum":
        return torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=learning_rate)
    return torch.optim.Adam(params, lr=learning_rate)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    """Apply one epoch's learning rate from the schedule to every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
