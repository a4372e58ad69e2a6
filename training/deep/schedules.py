"""Learning-rate decay schedules, written as the chapter writes them.

``n`` is the epoch index (0 = the first epoch, trained with ``α_0``); ``d`` the decay rate.

- ``constant``:     ``α_n = α_0``
- ``time``:         time-based decay. The chapter writes ``α_n = α_{n-1} / (1 + d·n)`` and works the example
                    ``α_0 = 0.3, d = 1 -> 0.15, 0.10, 0.08, 0.06, 0.05`` at epochs 1-5. Those table values are
                    ``α_0 / (1 + d·n)`` (the recursion where ``α_{n-1}`` is the *undecayed* rate, as in Keras'
                    ``decay`` argument), so ``time`` follows the table.
- ``time-recursive``: the recursion read literally, ``α_n = α_{n-1} / (1 + d·n)`` with the decayed previous
                    rate (0.15, 0.05, 0.0125, ... for the example above).
- ``step``:         step-based decay ``α_n = α_0 · d^floor((1 + n) / r)`` (``r`` = ``step_size``).
- ``exponential``:  ``α_n = α_0 · e^{-d·n}``.
"""

from __future__ import annotations

import math

from training.deep.errors import DeepConfigError

__all__ = ["SCHEDULES", "learning_rate_at", "learning_rates"]

SCHEDULES: tuple[str, ...] = ("constant", "time", "time-recursive", "step", "exponential")


def _check(schedule: str, alpha0: float, decay: float, step_size: int) -> None:
    if schedule not in SCHEDULES:
        raise DeepConfigError(
            "schedule", schedule, f"one of {', '.join(SCHEDULES)}", "pick a schedule from the list"
        )
    if not (alpha0 > 0 and math.isfinite(alpha0)):
        raise DeepConfigError("learning_rate", alpha0, "a finite number > 0", "e.g. learning_rate=0.001")
    if not (decay >= 0 and math.isfinite(decay)):
        raise DeepConfigError("decay", decay, "a finite number >= 0", "e.g. decay=0.01")
    if schedule == "step" and not (int(step_size) == step_size and step_size >= 1):
        raise DeepConfigError("step_size", step_size, "an integer >= 1", "e.g. step_size=10")


def learning_rates(
    schedule: str, alpha0: float, epochs: int, decay: float = 0.0, step_size: int = 10
) -> list[float]:
    """The learning rate for epochs ``0 .. epochs-1`` under ``schedule``."""
    _check(schedule, alpha0, decay, step_size)
    rates: list[float] = []
    for n in range(epochs):
        if schedule == "constant":
            rate = alpha0
        elif schedule == "time":
            rate = alpha0 / (1.0 + decay * n)
        elif schedule == "time-recursive":
            rate = alpha0 if n == 0 else rates[-1] / (1.0 + decay * n)
        elif schedule == "step":
            rate = alpha0 * decay ** math.floor((1 + n) / step_size)
        else:
            rate = alpha0 * math.exp(-decay * n)
        rates.append(rate)
    return rates


def learning_rate_at(
    schedule: str, alpha0: float, epoch: int, decay: float = 0.0, step_size: int = 10
) -> float:
    """The learning rate of one epoch (0-based)."""
    return learning_rates(schedule, alpha0, epoch + 1, decay, step_size)[-1]
