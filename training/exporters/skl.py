"""Exporters that produce a base graph from a fitted scikit-learn estimator with skl2onnx.

skl2onnx gets two things wrong for us (measured with skl2onnx 1.20 / scikit-learn 1.9): it converts
``CalibratedClassifierCV(Pipeline(...))`` off by up to 0.59, and isotonic calibration as a
nearest-threshold lookup instead of linear interpolation (off by up to 0.20). So skl2onnx only converts
the *base* estimator, to its probabilities (``kind="proba"``) or to the response the calibrator consumes
(``kind="response"``: ``decision_function`` when the estimator has one, else ``predict_proba``; one
column for binary); the calibrator is one of :mod:`training.calibration`, fused by
:mod:`training.compose`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

from training.errors import ExportError
from training.graph import INPUT, OPSET, BaseGraph, Exporter, Kind, run_output
from training.response import response, response_method

__all__ = ["base_error", "floor_to_float32", "sklearn_exporter"]


def sklearn_exporter(double: bool) -> Exporter:
    """An exporter converting a fitted estimator/pipeline with skl2onnx.

    ``double``: compute the whole pipeline in float64 inside the graph (input cast once).
    """

    def export(estimator: Any, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        raw = kind == "response" and response_method(estimator) == "decision_function"
        model = _convert(estimator, final, n_features, double, raw)
        output = _rewire(model.graph, n_features, double, kind == "response" and n_classes == 2)
        precision = (
            "float32 input cast once to float64; preprocessing, model and calibrator computed in float64"
            if double
            else "float32 model; calibrator in float64"
        )
        if double and type(final).__name__ == "SVC":
            precision += " (the SVM operator keeps support vectors in float32 attributes)"
        return BaseGraph(model=model, output=output, precision=precision, converter="skl2onnx")

    return export


def _convert(est: Any, final: Any, n_features: int, double: bool, raw: bool) -> onnx.ModelProto:
    """skl2onnx's graph of ``est`` (no zipmap; ``raw``: the final step's raw scores)."""
    options: dict[str, Any] = {"zipmap": False}
    if raw:
        options["raw_scores"] = True
    src = "input_f64" if double else INPUT
    tensor = DoubleTensorType if double else FloatTensorType
    try:
        with warnings.catch_warnings():
            # skl2onnx reads SVC.probA_/probB_, deprecated in scikit-learn 1.9, even when empty
            warnings.simplefilter("ignore", FutureWarning)
            return convert_sklearn(
                est,
                initial_types=[(src, tensor([None, n_features]))],
                target_opset=OPSET,
                options={id(final): options},
            )
    except Exception as e:  # skl2onnx raises many types
        raise ExportError(
            f"skl2onnx could not convert {type(final).__name__}: {e}".splitlines()[0][:300],
            "choose another model family",
        ) from None


def _rewire(graph: onnx.GraphProto, n_features: int, double: bool, last_column: bool) -> str:
    """Rename skl2onnx's outputs, cast a float32 ``input`` in (``double``), keep one output; its name."""
    out = graph.output[1].name  # label, probabilities
    _rename_value(graph, "label", "base_label")
    _rename_value(graph, out, "base_scores")
    nodes: list[onnx.NodeProto] = []
    if double:
        del graph.input[:]
        graph.input.append(helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features]))
        nodes.append(
            helper.make_node("Cast", [INPUT], ["input_f64"], to=TensorProto.DOUBLE, name="lg_cast_in")
        )
    output = "base_scores"
    tail: list[onnx.NodeProto] = []
    if last_column:
        tail.append(_last_column("base_scores", "base_response", graph))
        output = "base_response"
    new_nodes = nodes + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(new_nodes)
    _set_outputs(graph, [output])
    return output


def floor_to_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value, as float64 (so ``x <= t`` is unchanged for float32 x)."""
    f = np.asarray(values, dtype=np.float64).astype(np.float32)
    over = f.astype(np.float64) > values
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f.astype(np.float64)


def base_error(base: BaseGraph, estimator: Any, X: np.ndarray, monotone: bool = False) -> tuple[float, float]:
    """How far the base graph's response (the calibrator's input) is from native on rows ``X``.

    ``monotone``: the graph computes ``response(..., monotone=True)`` (kind ``"monotone_response"``).

    Returns ``(absolute, relative)``: the error model ``|graph - native| <= absolute + relative * |s|``
    (absolute = the largest error where ``|s|`` is at most its median, relative = the largest
    ``error / |s|`` above it).
    """
    X32 = np.asarray(X, dtype=np.float32)
    want = response(estimator, X32.astype(np.float64), monotone)
    got = run_output(base, X32).reshape(want.shape)
    err, mag = np.abs(got - want).ravel(), np.abs(want).ravel()
    big = mag > max(float(np.median(mag)), 1e-300)
    relative = float(np.max(err[big] / mag[big])) if big.any() else 0.0
    absolute = float(np.max(err[~big])) if (~big).any() else 0.0
    return absolute, relative


# ----------------------------------------------------------------------------------- node helpers
def _int64(name: str, value: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=np.int64), name)


def _last_column(src: str, dst: str, graph: onnx.GraphProto) -> onnx.NodeProto:
    graph.initializer.extend(
        [_int64("lg_last_st", [-1]), _int64("lg_last_en", [2**62]), _int64("lg_last_ax", [1])]
    )
    return helper.make_node(
        "Slice", [src, "lg_last_st", "lg_last_en", "lg_last_ax"], [dst], name="lg_last_col"
    )


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]
    for o in graph.output:
        if o.name == old:
            o.name = new


def _set_outputs(graph: onnx.GraphProto, names: list[str]) -> None:
    """Keep only ``names`` as graph outputs (new names get the element type of ``base_scores``)."""
    elem = next(o.type.tensor_type.elem_type for o in graph.output if o.name == "base_scores")
    known = {o.name: o for o in graph.output}
    outs = [known.get(n) or helper.make_tensor_value_info(n, elem, [None, None]) for n in names]
    del graph.output[:]
    graph.output.extend(outs)
