"""Registers ``mlp`` in the training core's family table (``training.families``).

The search spends its budget on the sensitive hyperparameters first — learning rate, schedule (with its
decay) and units per layer; depth, dropout and the rest stay at the defaults below (both recorded in the
card's search ranges/defaults). With the small budgets of ``lockgate train`` a second stage over the
less sensitive ones rarely pays; use :class:`MLPClassifier` directly to tune them.

The exporter hands the core a graph from ``input`` to the MLP's probabilities (``kind="proba"``) or to
the positive-class probability / class probabilities the calibrator consumes (``kind="response"``; the
MLP has no ``decision_function``), or to its logits for temperature scaling (``kind="scores"``: the margin
``S1 - S0`` for binary, ``S`` for multiclass).
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import helper

from training.deep.estimator import MLPClassifier
from training.deep.export import mlp_scores_onnx
from training.deep.onnx_graph import INPUT, OPSET, GraphBuilder, embed_model, strip_doc_strings
from training.export import BaseGraph
from training.families import Choice, Family, FloatRange, register_family

__all__ = ["MLP_FAMILY", "base_model", "make_mlp", "mlp_exporter"]

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


def base_model(b: GraphBuilder, n_features: int, output: str, name: str) -> onnx.ModelProto:
    """A model from ``input`` to ``output`` built from ``b``'s nodes (no calibrator, no label)."""
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output, onnx.TensorProto.DOUBLE, None)],
        initializer=b.initializers,
    )
    used = {n.domain for n in b.nodes}
    opsets = [helper.make_opsetid(d, v) for d, v in OPSET.items() if d == "" or d in used]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="lockgate", producer_version="1")
    model.ir_version = 8
    return strip_doc_strings(model)


def mlp_exporter(estimator: Any, n_features: int, n_classes: int, kind: str) -> BaseGraph:
    """``training.export.Exporter`` for :class:`MLPClassifier` (torch.onnx.export + softmax)."""
    b = GraphBuilder("mlp_base")
    scores = embed_model(b, mlp_scores_onnx(estimator), prefix="mlp/")["scores"]
    if kind == "scores":  # temperature scaling reads the logits (binary: the margin S1 - S0)
        if n_classes == 2:
            scores = b.op("Sub", [b.column(scores, 1), b.column(scores, 0)])
        probs = b.op("Cast", [scores], to=onnx.TensorProto.DOUBLE)
    else:
        probs = b.op("Cast", [b.softmax(scores)], to=onnx.TensorProto.DOUBLE)
        if kind == "response" and n_classes == 2:
            probs = b.column(probs, 1)
    out = b.op("Identity", [probs], hint="out")
    return BaseGraph(
        model=base_model(b, n_features, out, "mlp"),
        output=out,
        precision="float32 network (torch.onnx.export, opset 17); softmax output cast to float64 for the "
        "calibrator",
        converter=f"torch.onnx.export (TorchScript exporter, dynamo=False) torch {_torch_version()}",
    )


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


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
    notes={
        "search order": "sensitive hyperparameters first: learning_rate, schedule+decay, units per layer",
        "step schedule": f"alpha_n = alpha_0 * {STEP_FACTOR}^floor((1+n)/{STEP_SIZE}); decay is ignored",
        "early stopping": "patience 10 epochs on the log loss of 15% of the training split held out; best "
        "checkpoint restored and exported",
    },
), replace=True)
