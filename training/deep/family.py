"""Registers ``mlp`` in the training core's family table (``training.families``).

The search spends its budget on the sensitive hyperparameters first — learning rate, schedule (with its
decay) and units per layer; depth, dropout and the rest stay at the defaults below (both recorded in the
card's search ranges/defaults). With the small budgets of ``lockgate train`` a second stage over the
less sensitive ones rarely pays; use :class:`MLPClassifier` directly to tune them.

The exporter (:func:`training.deep.export.mlp_exporter`) hands the core a graph from ``input`` to the
MLP's probabilities (``kind="proba"``) or to the response the calibrator consumes (``kind="response"``:
its logits, the margin ``S1 - S0`` for binary and ``S`` for multiclass).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from training.deep.estimator import MLPClassifier
from training.deep.export import mlp_exporter
from training.deep.size_search import size_search
from training.deep.transfer import configure_transfer, resolve_parent
from training.families import Choice, Family, FloatRange, register_family
from training.preprocessing import ONEHOT_MAX_ADDITIVE

__all__ = ["MLP_FAMILY", "make_mlp", "mlp_exporter"]

#: step-based decay multiplies by this factor every STEP_SIZE epochs
STEP_FACTOR, STEP_SIZE = 0.5, 10

DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "schedule": "constant",
    "decay": 0.01,
    "units": 128,
    "layers": 2,
    "dropout": 0.0,
    "batch_norm": False,
    "optimizer": "adam",
    "batch_size": 32,
    "epochs": 100,
    "patience": 10,
    "l2": 0.0,
    "class_weight": None,
}


def make_mlp(params: dict[str, Any], seed: int) -> MLPClassifier:
    """The family's estimator for one candidate's ``params`` (see :data:`DEFAULTS`)."""
    p = {**DEFAULTS, **params}
    step = p["schedule"] == "step"
    return MLPClassifier(
        hidden_layer_sizes=tuple([int(p["units"])] * int(p["layers"])),
        dropout=float(p["dropout"]),
        batch_norm=bool(p["batch_norm"]),
        l2=float(p["l2"]),
        optimizer=p["optimizer"],
        learning_rate=float(p["learning_rate"]),
        batch_size=int(p["batch_size"]),
        epochs=int(p["epochs"]),
        patience=int(p["patience"]),
        schedule=p["schedule"],
        decay=STEP_FACTOR if step else float(p["decay"]),
        step_size=STEP_SIZE,
        class_weight=p["class_weight"],
        random_state=int(seed),
    )


def configure_mlp(family: Family, config: Any, registry_url: str | None) -> Family:
    """The MLP family for one run: from a parent (``init_from``) or with the size search."""
    if config.init_from is not None:
        parent = resolve_parent(config.init_from, registry_url)
        return configure_transfer(family, parent, config.freeze, config.unfreeze_after)
    if config.size_search:
        return replace(family, search=size_search, notes={
            **family.notes, "size search": "start 2 x 128, grow until the training split is overfitted, then "
            "regularize (dropout, L2) until validation stops improving; --trials caps the steps"})
    return family


MLP_FAMILY = register_family(Family(
    name="mlp",
    description="PyTorch multi-layer perceptron (standardized inputs, early stopping on a held-out part "
    "of the training split, best epoch exported)",
    space={
        "learning_rate": FloatRange(1e-4, 3e-2, log=True),
        "schedule": Choice(("constant", "time", "step", "exponential")),
        "decay": FloatRange(1e-3, 1e-1, log=True),
        "units": Choice((32, 64, 128, 256)),
    },
    defaults=DEFAULTS,
    make_estimator=make_mlp,
    export=mlp_exporter,
    estimator_type=MLPClassifier,
    onehot_max=ONEHOT_MAX_ADDITIVE,
    configure=configure_mlp,
    notes={
        "search order": "sensitive hyperparameters first: learning_rate, schedule+decay, units per layer",
        "step schedule": f"alpha_n = alpha_0 * {STEP_FACTOR}^floor((1+n)/{STEP_SIZE}); decay is ignored",
        "early stopping": "patience 10 epochs on the log loss of 15% of the training split held out; best "
        "checkpoint restored and exported",
    },
), replace=True)
