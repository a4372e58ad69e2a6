"""Export a fitted :class:`MLPClassifier` (+ its calibrator) to ONE deterministic ONNX graph.

The network is exported with ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: the
dynamo exporter needs onnxscript, which lockgate does not ship) at a fixed opset with doc strings off;
the calibrator and the ``label``/``probabilities`` outputs are appended as plain ONNX nodes.
"""

from __future__ import annotations

import copy
import io
import warnings

import onnx
import torch

from training.deep.calibrators import ScoreCalibrator
from training.deep.estimator import MLPClassifier
from training.deep.onnx_graph import INPUT, OPSET, GraphBuilder, embed_model, finish_model, strip_doc_strings

__all__ = ["export_mlp", "mlp_scores_onnx", "onnx_bytes"]


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


def export_mlp(mlp: MLPClassifier, calibrator: ScoreCalibrator | None = None) -> onnx.ModelProto:
    """Network + calibrator + outputs ``label`` int64 / ``probabilities`` float32, in one graph."""
    n_classes = len(mlp.classes_)
    cal = calibrator or ScoreCalibrator(method="none", n_classes=n_classes)
    b = GraphBuilder("cal")
    scores = embed_model(b, mlp_scores_onnx(mlp), prefix="mlp/")["scores"]
    probs = cal.to_onnx(b, scores)
    return finish_model(b, mlp.n_features_in_, probs, n_classes, graph_name="lockgate-mlp")


def onnx_bytes(model: onnx.ModelProto) -> bytes:
    """Serialized bytes (deterministic for the graphs built here)."""
    return model.SerializeToString(deterministic=True)
