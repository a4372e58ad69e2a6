"""Export a fitted :class:`MLPClassifier` to ONNX: the torch exporter of the deep family.

The network is exported with ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: the
dynamo exporter needs onnxscript, which lockgate does not ship) at a fixed opset with doc strings off.
:func:`mlp_exporter` is the family's :data:`training.graph.Exporter` (probabilities, or the response:
the positive-class probability for binary, all of them for multiclass, see :mod:`training.response`);
:func:`export_mlp` adds a calibrator of :mod:`training.calibration` and the ``label``/``probabilities``
outputs.
"""

from __future__ import annotations

import copy
import io
import warnings

import onnx
import torch

from training.calibration import Calibrator, NoCalibration
from training.compose import build_model
from training.deep.estimator import MLPClassifier
from training.graph import (
    INPUT,
    OPSET,
    BaseGraph,
    GraphBuilder,
    Kind,
    base_model,
    embed_model,
    strip_doc_strings,
)

__all__ = ["export_mlp", "mlp_exporter", "mlp_scores_onnx", "onnx_bytes"]


def mlp_scores_onnx(mlp: MLPClassifier) -> onnx.ModelProto:
    """The network alone: ``input`` [N, F] -> ``scores`` [N, C] (``softmax(scores)`` = predict_proba)."""
    net = copy.deepcopy(mlp.network_).to("cpu").eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(2, mlp.n_features_in_, dtype=torch.float32),),
            buf,
            dynamo=False,
            opset_version=OPSET[""],
            input_names=[INPUT],
            output_names=["scores"],
            dynamic_axes={INPUT: {0: "N"}, "scores": {0: "N"}},
            do_constant_folding=True,
        )
    return strip_doc_strings(onnx.load_from_string(buf.getvalue()))


def mlp_exporter(estimator: MLPClassifier, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
    """The network's probabilities (``kind="proba"``) or its response (the same, one column for binary)."""
    b = GraphBuilder("mlp_base")
    scores = b.double(embed_model(b, mlp_scores_onnx(estimator), prefix="mlp/")["scores"])
    out = b.softmax(scores)
    if kind == "response" and n_classes == 2:
        out = b.column(out, 1)
    out = b.op("Identity", [out], hint="out")
    return BaseGraph(
        model=base_model(b, n_features, out, "mlp"),
        output=out,
        precision="float32 network (torch.onnx.export, opset 17); logits cast to float64 for the calibrator",
        converter=f"torch.onnx.export (TorchScript exporter, dynamo=False) torch {torch.__version__}",
    )


def export_mlp(mlp: MLPClassifier, calibrator: Calibrator | None = None) -> onnx.ModelProto:
    """Network + calibrator + outputs ``label`` int64 / ``probabilities`` float32, in one graph."""
    n_classes = len(mlp.classes_)
    cal = calibrator or NoCalibration(n_classes, "probability")
    base = mlp_exporter(mlp, mlp.n_features_in_, n_classes, "response")
    return build_model([(base, cal)], mlp.n_features_in_, n_classes, "", {}, "lockgate-mlp")


def onnx_bytes(model: onnx.ModelProto) -> bytes:
    """Serialized bytes (deterministic for the graphs built here)."""
    return model.SerializeToString(deterministic=True)
