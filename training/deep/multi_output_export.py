"""ONE ONNX graph for a :class:`~training.deep.multi_output.MultiOutputMLP`: one output per head.

``input`` float32 [N, F] -> the network (``torch.onnx.export``, as
:func:`training.deep.export.mlp_scores_onnx`) -> head 1: its calibrator (:mod:`training.calibration`)
-> ``label`` int64 [N] and ``probabilities`` float32 [N, C1], the outputs every lockgate model has;
head 2 (named after its target ``NAME``): classification -> its calibrator -> ``NAME__label`` /
``NAME__probabilities``; regression ->
``NAME__value`` float32 [N] = ``low + (high - low) * sigmoid(z)``.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from training.calibration import Calibrator
from training.deep.multi_output import MultiOutputMLP
from training.errors import ExportError
from training.graph import INPUT, OPSET, GraphBuilder, checked_model, embed_model, strip_doc_strings

__all__ = ["export_multi_output", "head_outputs"]


def head_outputs(name: str, kind: str) -> list[str]:
    """The graph outputs of a second head named ``name``."""
    return [f"{name}__label", f"{name}__probabilities"] if kind == "classification" else [f"{name}__value"]


def _network_onnx(model: MultiOutputMLP) -> onnx.ModelProto:
    module = copy.deepcopy(model.exported_module()).to("cpu").eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.zeros(2, model.n_features_in_, dtype=torch.float32),), buf, dynamo=False,
            opset_version=OPSET[""], input_names=[INPUT], output_names=["scores1", "scores2"],
            dynamic_axes={INPUT: {0: "N"}, "scores1": {0: "N"}, "scores2": {0: "N"}},
            do_constant_folding=True,
        )
    return strip_doc_strings(onnx.load_from_string(buf.getvalue()))


def _response(b: GraphBuilder, scores: str, n_classes: int) -> str:
    """The calibrator's input (kind ``margin``): ``S1 - S0`` [N, 1] for binary, ``S`` for multiclass."""
    if n_classes == 2:
        return b.op("Sub", [b.column(scores, 1), b.column(scores, 0)])
    return scores


def _classification(b: GraphBuilder, scores: str, calibrator: Calibrator, n_classes: int, label: str,
                    probabilities: str) -> list[onnx.ValueInfoProto]:
    probs = calibrator.to_onnx(b, _response(b, b.double(scores), n_classes))
    idx = b.op("ArgMax", [probs], axis=1, keepdims=0)
    b.nodes.append(helper.make_node("Cast", [idx], [label], name=f"{label}_out", to=TensorProto.INT64))
    b.nodes.append(helper.make_node("Cast", [probs], [probabilities], name=f"{probabilities}_out",
                                    to=TensorProto.FLOAT))
    return [helper.make_tensor_value_info(label, TensorProto.INT64, [None]),
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, n_classes])]


def _regression(b: GraphBuilder, z: str, low: float, high: float, value: str) -> list[onnx.ValueInfoProto]:
    s = b.op("Sigmoid", [b.double(z)])
    v = b.op("Add", [b.const(low), b.op("Mul", [b.const(high - low), s])])
    flat = b.op("Reshape", [v, b.const([-1], np.int64)])
    b.nodes.append(helper.make_node("Cast", [flat], [value], name=f"{value}_out", to=TensorProto.FLOAT))
    return [helper.make_tensor_value_info(value, TensorProto.FLOAT, [None])]


def export_multi_output(model: MultiOutputMLP, name2: str, calibrator1: Calibrator,
                        calibrator2: Calibrator | None, doc: str = "", metadata: dict[str, str] | None = None
                        ) -> onnx.ModelProto:
    """The whole multi-output model as one graph (see the module docstring)."""
    b = GraphBuilder("mo")
    outs = embed_model(b, _network_onnx(model), prefix="net/")
    outputs = _classification(b, outs["scores1"], calibrator1, len(model.classes_), "label", "probabilities")
    if model.kind2 == "classification":
        if calibrator2 is None:
            raise ExportError("a classification head needs its calibrator", "report this bug")
        outputs += _classification(b, outs["scores2"], calibrator2, int(model.n_classes2), *head_outputs(
            name2, "classification"))
    else:
        low, high = (float(v) for v in model.range2)
        outputs += _regression(b, outs["scores2"], low, high, head_outputs(name2, "regression")[0])
    onnx_model = checked_model(b, model.n_features_in_, outputs, "lockgate_mlp_multi_output")
    onnx_model.doc_string = onnx_model.graph.doc_string = doc
    onnx_model.domain = "ai.lockgate"
    for key in sorted(metadata or {}):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, (metadata or {})[key]
    return onnx_model
