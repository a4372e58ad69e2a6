"""Build the ONE exported graph: base model (skl2onnx or our own tree builder) + calibrator + label.

skl2onnx gets two things wrong for us (measured with skl2onnx 1.20 / scikit-learn 1.9): it converts
``CalibratedClassifierCV(Pipeline(...))`` off by up to 0.59, and isotonic calibration as a
nearest-threshold lookup instead of linear interpolation (off by up to 0.20). So skl2onnx only converts
the *base* estimator here, to the same response scikit-learn's calibrator consumes
(``decision_function`` when the estimator has one, else ``predict_proba``), and the calibrator is
built from plain ONNX operators in float64:

- sigmoid:  ``p_k = sigmoid(-(a_k * s_k + b_k))``
- isotonic: ``p_k = y_0 + sum_i slope_i * (clip(s_k, x_i, x_{i+1}) - x_i)`` (exact linear interpolation,
  clipped outside the fitted range, as ``IsotonicRegression(out_of_bounds="clip")``)
- binary: ``[1 - p, p]``; multiclass: one-vs-rest, renormalized (uniform where all are 0)
- temperature: ``softmax(S / T)`` on the model's scores ``S`` (binary: ``S = [0, d]``), the nodes of
  :meth:`training.deep.calibrators.ScoreCalibrator.to_onnx` in float64

Outputs: ``label`` int64 ``[N]`` = argmax of the calibrated probabilities (an index into
``card.classes``), ``probabilities`` float32 ``[N, C]``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.errors import ExportError

__all__ = [
    "OPSET",
    "BaseGraph",
    "Exporter",
    "base_error",
    "build_model",
    "onnx_predict",
    "response_method",
    "score_response",
    "sklearn_exporter",
]

OPSET = {"": 17, "ai.onnx.ml": 3}
#: IR version 8 goes with opset 17 and is read by every ONNX Runtime since 1.14
IR_VERSION = 8
INPUT = "input"
Kind = Literal["proba", "response", "scores"]


@dataclass(frozen=True)
class BaseGraph:
    """A graph from ``input`` float32 [N, F] to ``output`` [N, K] (any float type).

    kind "proba": K = C class probabilities. kind "response": what the calibrator consumes — K = 1 for
    binary (the positive class's decision value or probability), K = C for multiclass. kind "scores"
    (temperature scaling): the logits of :func:`score_response` — K = 1 for binary (``d`` with
    ``p1 = sigmoid(d)``), K = C for multiclass (``S`` with ``p = softmax(S)``).
    """

    model: onnx.ModelProto
    output: str
    precision: str
    converter: str


#: ``exporter(fitted_estimator, n_features, n_classes, kind) -> BaseGraph``
Exporter = Callable[[Any, int, int, Kind], BaseGraph]


def response_method(estimator: Any) -> str:
    """The method scikit-learn's calibrator reads: decision_function if present, else predict_proba."""
    return "decision_function" if hasattr(estimator, "decision_function") else "predict_proba"


def score_response(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The logits temperature scaling reads, [N, 1] for binary and [N, C] for multiclass (float64).

    ``decision_scores`` (S with ``softmax(S)`` = ``predict_proba``, e.g. the MLP) when the estimator has
    it, else ``decision_function``; binary scores become the one margin ``d = S1 - S0``.
    """
    if hasattr(estimator, "decision_scores"):
        S = np.asarray(estimator.decision_scores(X), dtype=np.float64)
        return S[:, 1:] - S[:, :1] if S.shape[1] == 2 else S
    d = np.asarray(estimator.decision_function(X), dtype=np.float64)
    return d.reshape(len(d), -1)


# ----------------------------------------------------------------------------------- skl2onnx base
def sklearn_exporter(double: bool, round_tree_thresholds: bool = False) -> Exporter:
    """An exporter converting a fitted estimator/pipeline with skl2onnx.

    ``double``: compute the whole pipeline in float64 inside the graph (input cast once).
    ``round_tree_thresholds``: round forest thresholds down to float32 on a copy — exact for float32
    inputs, which is what scikit-learn's trees compare in anyway.
    """

    def export(estimator: Any, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        est = copy.deepcopy(estimator)
        final = est.steps[-1][1] if hasattr(est, "steps") else est
        if round_tree_thresholds:
            for tree in getattr(final, "estimators_", []):
                th = tree.tree_.threshold
                th[:] = floor_to_float32(th)
        raw = kind in ("response", "scores") and response_method(estimator) == "decision_function"
        options: dict[str, Any] = {"zipmap": False}
        if raw:
            options["raw_scores"] = True
        src = "input_f64" if double else INPUT
        tensor = DoubleTensorType if double else FloatTensorType
        try:
            with warnings.catch_warnings():
                # skl2onnx reads SVC.probA_/probB_, deprecated in scikit-learn 1.9, even when empty
                warnings.simplefilter("ignore", FutureWarning)
                model = convert_sklearn(
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
        graph = model.graph
        out = graph.output[1].name  # label, probabilities
        _rename_value(graph, "label", "base_label")
        _rename_value(graph, out, "base_scores")
        nodes: list[onnx.NodeProto] = []
        if double:
            del graph.input[:]
            graph.input.append(helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features]))
            nodes.append(helper.make_node("Cast", [INPUT], [src], to=TensorProto.DOUBLE, name="lg_cast_in"))
        output = "base_scores"
        tail: list[onnx.NodeProto] = []
        if kind in ("response", "scores") and n_classes == 2:
            tail.append(_last_column("base_scores", "base_response", graph))
            output = "base_response"
        new_nodes = nodes + list(graph.node) + tail
        del graph.node[:]
        graph.node.extend(new_nodes)
        _set_outputs(graph, [output])
        precision = (
            "float32 input cast once to float64; preprocessing, model and calibrator computed in float64"
            if double
            else "float32 model (tree thresholds rounded down to float32: exact for float32 inputs, "
            "as scikit-learn's trees compare in float32); calibrator in float64"
        )
        if double and type(final).__name__ == "SVC":
            precision += " (the SVM operator keeps support vectors in float32 attributes)"
        return BaseGraph(model=model, output=output, precision=precision, converter="skl2onnx")

    return export


def floor_to_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value, as float64 (so ``x <= t`` is unchanged for float32 x)."""
    f = np.asarray(values, dtype=np.float64).astype(np.float32)
    over = f.astype(np.float64) > values
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f.astype(np.float64)


# ----------------------------------------------------------------------------------- composition
@dataclass(frozen=True)
class Head:
    """The calibrator as data, read from a fitted ``CalibratedClassifierCV`` (or none)."""

    method: Literal["none", "sigmoid", "isotonic", "temperature"]
    n_classes: int
    params: list[dict[str, np.ndarray]]


def head_of(native: Any, n_classes: int) -> Head:
    """Extract the calibrator(s) of a fitted CalibratedClassifierCV; a plain estimator means none."""
    if hasattr(native, "temperature_"):
        return Head("temperature", n_classes, [{"temperature": np.array(float(native.temperature_))}])
    if not hasattr(native, "calibrated_classifiers_"):
        return Head("none", n_classes, [])
    (cc,) = native.calibrated_classifiers_
    params: list[dict[str, np.ndarray]] = []
    for cal in cc.calibrators:
        if hasattr(cal, "a_"):
            params.append({"a": np.array(cal.a_, dtype=np.float64), "b": np.array(cal.b_, dtype=np.float64)})
        else:
            params.append(
                {
                    "x": np.asarray(cal.X_thresholds_, dtype=np.float64),
                    "y": np.asarray(cal.y_thresholds_, dtype=np.float64),
                }
            )
    method = "sigmoid" if "a" in params[0] else "isotonic"
    return Head(method, n_classes, params)  # type: ignore[arg-type]


def build_model(
    base: BaseGraph, head: Head, doc: str, metadata: dict[str, str], graph_name: str
) -> onnx.ModelProto:
    """Append the calibrator, renormalization, ``label`` and ``probabilities`` to ``base``."""
    model = copy.deepcopy(base.model)
    graph = model.graph
    nodes: list[onnx.NodeProto] = [
        helper.make_node("Cast", [base.output], ["lg_s"], to=TensorProto.DOUBLE, name="lg_cast_scores")
    ]
    inits: list[onnx.TensorProto] = []
    c = head.n_classes
    if head.method == "none":
        probs = "lg_s"
    elif head.method == "temperature":
        from training.calibration import temperature_nodes

        t_nodes, t_inits, probs = temperature_nodes("lg_s", head.n_classes, head.params[0]["temperature"])
        nodes += t_nodes
        inits += t_inits
    else:
        cols = []
        for k, p in enumerate(head.params):
            col = f"lg_s{k}"
            if len(head.params) == 1:
                col = "lg_s"
            else:
                nodes.append(_column("lg_s", col, k, inits))
            out = f"lg_p{k}"
            if head.method == "sigmoid":
                nodes += _sigmoid(col, out, p["a"], p["b"], inits, k)
            else:
                nodes += _isotonic(col, out, p["x"], p["y"], inits, k)
            cols.append(out)
        if c == 2:
            inits.append(numpy_helper.from_array(np.array(1.0), "lg_one"))
            nodes.append(helper.make_node("Sub", ["lg_one", cols[0]], ["lg_p_neg"], name="lg_neg"))
            nodes.append(
                helper.make_node("Concat", ["lg_p_neg", cols[0]], ["lg_probs"], axis=1, name="lg_cat")
            )
        else:
            inits += [
                numpy_helper.from_array(np.array([1], dtype=np.int64), "lg_axis1"),
                numpy_helper.from_array(np.array(0.0), "lg_zero"),
                numpy_helper.from_array(np.array(1.0), "lg_one"),
                numpy_helper.from_array(np.full((1, c), 1.0 / c), "lg_uniform"),
            ]
            nodes += [
                helper.make_node("Concat", cols, ["lg_praw"], axis=1, name="lg_cat"),
                helper.make_node("ReduceSum", ["lg_praw", "lg_axis1"], ["lg_sum"], keepdims=1, name="lg_sum"),
                helper.make_node("Equal", ["lg_sum", "lg_zero"], ["lg_is0"], name="lg_is0"),
                helper.make_node("Where", ["lg_is0", "lg_one", "lg_sum"], ["lg_den"], name="lg_den"),
                helper.make_node("Div", ["lg_praw", "lg_den"], ["lg_pnorm"], name="lg_norm"),
                helper.make_node("Where", ["lg_is0", "lg_uniform", "lg_pnorm"], ["lg_probs"], name="lg_fix0"),
            ]
        probs = "lg_probs"
    nodes += [
        helper.make_node("ArgMax", [probs], ["label"], axis=1, keepdims=0, name="lg_label"),
        helper.make_node("Cast", [probs], ["probabilities"], to=TensorProto.FLOAT, name="lg_cast_out"),
    ]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, c]),
        ]
    )
    del graph.value_info[:]
    graph.name = graph_name
    graph.doc_string = doc
    model.doc_string = doc
    model.producer_name = "lockgate"
    model.producer_version = "1"
    model.domain = "ai.lockgate"
    model.model_version = 1
    model.ir_version = IR_VERSION
    del model.metadata_props[:]
    for key in sorted(metadata):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, metadata[key]
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the composed ONNX graph is invalid: {e}", "report this bug") from None
    return model


def base_error(
    base: BaseGraph, estimator: Any, X: np.ndarray, n_classes: int, kind: Kind
) -> tuple[float, float]:
    """How far the base graph's output (the calibrator's input) is from native on rows ``X``.

    Returns ``(absolute, relative)``: the error model ``|graph - native| <= absolute + relative * |s|``
    (absolute = the largest error where ``|s|`` is at most its median, relative = the largest
    ``error / |s|`` above it).
    """
    import onnxruntime as ort

    model = copy.deepcopy(base.model)
    model.ir_version = IR_VERSION
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (got,) = sess.run([base.output], {INPUT: np.asarray(X, dtype=np.float32)})
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(
            f"ONNX Runtime cannot run the base graph: {str(e).splitlines()[0][:300]}", "report this bug"
        ) from None
    X64 = np.asarray(X, dtype=np.float32).astype(np.float64)
    if kind == "scores":
        want = score_response(estimator, X64)
    elif kind == "response" and response_method(estimator) == "decision_function":
        want = np.asarray(estimator.decision_function(X64), dtype=np.float64).reshape(len(X64), -1)
    else:
        want = np.asarray(estimator.predict_proba(X64), dtype=np.float64)
        if kind == "response" and n_classes == 2:
            want = want[:, 1:]
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    err, mag = np.abs(got - want).ravel(), np.abs(want).ravel()
    big = mag > max(float(np.median(mag)), 1e-300)
    relative = float(np.max(err[big] / mag[big])) if big.any() else 0.0
    absolute = float(np.max(err[~big])) if (~big).any() else 0.0
    return absolute, relative


def onnx_predict(model_bytes: bytes, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the exported graph with ONNX Runtime: (label int64 [N], probabilities float32 [N, C])."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        label, probs = sess.run(["label", "probabilities"], {INPUT: np.asarray(X, dtype=np.float32)})
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(
            f"ONNX Runtime cannot run the exported graph: {str(e).splitlines()[0][:300]}", "report this bug"
        ) from None
    return label, probs


# ----------------------------------------------------------------------------------- node helpers
def _sigmoid(col: str, out: str, a: np.ndarray, b: np.ndarray, inits: list, k: int) -> list:
    inits += [
        numpy_helper.from_array(np.array(-float(a)), f"lg_a{k}"),
        numpy_helper.from_array(np.array(-float(b)), f"lg_b{k}"),
    ]
    return [
        helper.make_node("Mul", [col, f"lg_a{k}"], [f"lg_as{k}"], name=f"lg_mul{k}"),
        helper.make_node("Add", [f"lg_as{k}", f"lg_b{k}"], [f"lg_z{k}"], name=f"lg_add{k}"),
        helper.make_node("Sigmoid", [f"lg_z{k}"], [out], name=f"lg_sigmoid{k}"),
    ]


def _isotonic(col: str, out: str, x: np.ndarray, y: np.ndarray, inits: list, k: int) -> list:
    if len(x) < 2:
        inits.append(numpy_helper.from_array(np.array([[float(y[0])]]), f"lg_y0_{k}"))
        inits.append(numpy_helper.from_array(np.array(0.0), f"lg_zero{k}"))
        return [
            helper.make_node("Mul", [col, f"lg_zero{k}"], [f"lg_z{k}"], name=f"lg_iso_zero{k}"),
            helper.make_node("Add", [f"lg_z{k}", f"lg_y0_{k}"], [out], name=f"lg_iso_const{k}"),
        ]
    lo, hi = x[:-1], x[1:]
    width = hi - lo
    slope = np.where(width > 0, (y[1:] - y[:-1]) / np.where(width > 0, width, 1.0), 0.0)
    inits += [
        numpy_helper.from_array(lo.reshape(1, -1), f"lg_lo{k}"),
        numpy_helper.from_array(hi.reshape(1, -1), f"lg_hi{k}"),
        numpy_helper.from_array(slope.reshape(1, -1), f"lg_slope{k}"),
        numpy_helper.from_array(np.array([float(y[0])]), f"lg_y0_{k}"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"lg_ax{k}"),
    ]
    return [
        helper.make_node("Min", [col, f"lg_hi{k}"], [f"lg_mn{k}"], name=f"lg_iso_min{k}"),
        helper.make_node("Max", [f"lg_mn{k}", f"lg_lo{k}"], [f"lg_cl{k}"], name=f"lg_iso_max{k}"),
        helper.make_node("Sub", [f"lg_cl{k}", f"lg_lo{k}"], [f"lg_dx{k}"], name=f"lg_iso_sub{k}"),
        helper.make_node("Mul", [f"lg_dx{k}", f"lg_slope{k}"], [f"lg_dy{k}"], name=f"lg_iso_mul{k}"),
        helper.make_node(
            "ReduceSum", [f"lg_dy{k}", f"lg_ax{k}"], [f"lg_rs{k}"], keepdims=1, name=f"lg_iso_sum{k}"
        ),
        helper.make_node("Add", [f"lg_rs{k}", f"lg_y0_{k}"], [out], name=f"lg_iso_add{k}"),
    ]


def _int64(name: str, value: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=np.int64), name)


def _column(src: str, dst: str, k: int, inits: list) -> onnx.NodeProto:
    inits += [_int64(f"lg_st{k}", [k]), _int64(f"lg_en{k}", [k + 1]), _int64(f"lg_colax{k}", [1])]
    return helper.make_node(
        "Slice", [src, f"lg_st{k}", f"lg_en{k}", f"lg_colax{k}"], [dst], name=f"lg_col{k}"
    )


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
