"""The ONNX contract every exporter meets, and the one ``GraphBuilder`` every graph is assembled with.

Every graph lockgate ships has input ``input`` float32 ``[N, F]`` and outputs ``label`` int64 ``[N]``
(an index into the card's classes) and ``probabilities`` float32 ``[N, C]``, at opset
:data:`OPSET` and IR version :data:`IR_VERSION`. Bytes are deterministic: fixed opsets, no doc strings
inside nodes, no timestamps, names derived from fixed prefixes.

An exporter turns a fitted model into a :class:`BaseGraph` (``input`` -> ``output``) of one
:data:`Kind`: ``"proba"`` (the C class probabilities) or ``"response"`` (what the calibrator consumes,
see :mod:`training.response`: the model's margins/logits when it has them, else its probabilities; one
column for binary). Calibrators and the composition append nodes with :class:`GraphBuilder`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from training.errors import ExportError
from training.graph_passes import optimise

__all__ = [
    "CATEGORICAL",
    "INPUT",
    "IR_VERSION",
    "OPSET",
    "BaseGraph",
    "Exporter",
    "GraphBuilder",
    "checked_model",
    "Kind",
    "base_model",
    "embed_model",
    "finish_model",
    "imported_opsets",
    "onnx_feeds",
    "onnx_predict",
    "opsets_of",
    "run_output",
    "strip_doc_strings",
]

#: the opsets of every graph we assemble (ai.onnx, ai.onnx.ml)
OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
#: IR version 8 goes with opset 17 and is read by every ONNX Runtime since 1.14
IR_VERSION = 8
INPUT = "input"
#: the string input [N, n_categorical] of a model trained on a table with categorical/boolean columns
CATEGORICAL = "categorical"
Kind = Literal["proba", "response", "monotone_response"]


@dataclass(frozen=True)
class BaseGraph:
    """A graph from ``input`` float32 [N, F] to ``output`` [N, K] (any float type).

    kind "proba": K = C class probabilities. kind "response": what the calibrator consumes
    (:func:`training.response.response`): K = 1 for binary, K = C for multiclass. kind
    "monotone_response": ``response(..., monotone=True)``, for calibrators that only use the order.
    """

    model: onnx.ModelProto
    output: str
    precision: str
    converter: str


#: ``exporter(fitted_estimator, n_features, n_classes, kind) -> BaseGraph``
Exporter = Callable[[Any, int, int, Kind], BaseGraph]


class GraphBuilder:
    """Accumulates nodes and initializers with unique, deterministic names."""

    def __init__(self, prefix: str = "g") -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}_{hint}_{self._count}"

    def const(self, value: Any, dtype: Any = np.float64, hint: str = "c") -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, domain: str = "",
           **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{out}_node", domain=domain,
                                           **attrs))
        return out

    # the small vocabulary calibrators, ensembles and exporters share
    def softmax(self, x: str) -> str:
        return self.op("Softmax", [x], axis=1)

    def column(self, x: str, k: int) -> str:
        """``x[:, k:k+1]`` as [N, 1]."""
        return self.op("Gather", [x, self.const([k], np.int64)], axis=1)

    def concat(self, parts: list[str]) -> str:
        return self.op("Concat", parts, axis=1) if len(parts) > 1 else parts[0]

    def double(self, x: str) -> str:
        return self.op("Cast", [x], to=TensorProto.DOUBLE)

    def complement(self, p: str) -> str:
        """``[1 - p, p]`` for a float64 [N, 1] probability."""
        return self.concat([self.op("Sub", [self.const(1.0), p]), p])

    def normalize_rows(self, x: str) -> str:
        return self.op("Div", [x, self.op("ReduceSum", [x, self.const([1], np.int64)], keepdims=1)])

    def normalize_or_uniform(self, x: str, n_classes: int) -> str:
        """Rows divided by their sum; uniform where the sum is 0 (scikit-learn's one-vs-rest rule)."""
        total = self.op("ReduceSum", [x, self.const([1], np.int64)], keepdims=1)
        is0 = self.op("Equal", [total, self.const(0.0)])
        den = self.op("Where", [is0, self.const(1.0), total])
        uniform = self.const(np.full((1, n_classes), 1.0 / n_classes))
        return self.op("Where", [is0, uniform, self.op("Div", [x, den])])

    def mean(self, parts: list[str]) -> str:
        if len(parts) == 1:
            return parts[0]
        return self.op("Div", [self.op("Sum", parts), self.const(float(len(parts)))])


def _renamed_graph(model: onnx.ModelProto, prefix: str, input_name: str) -> onnx.GraphProto:
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    inputs = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1:
        raise ExportError(f"a sub-model must have exactly one input, got {inputs}", "report this bug")

    def new(name: str) -> str:
        if name == "":
            return name
        return input_name if name == inputs[0] else f"{prefix}{name}"

    for node in graph.node:
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ExportError(f"sub-model node {node.op_type} has a subgraph; cannot embed it",
                                  "choose another model family")
        node.input[:] = [new(n) for n in node.input]
        node.output[:] = [new(n) for n in node.output]
        node.name = f"{prefix}{node.name}" if node.name else ""
        node.doc_string = ""
    for init in graph.initializer:
        init.name = new(init.name)
    return graph


def embed_model(builder: GraphBuilder, model: onnx.ModelProto, prefix: str,
                input_name: str = INPUT) -> dict[str, str]:
    """Copy ``model``'s nodes into ``builder`` (names prefixed; its input wired to ``input_name``).

    Returns the map original output name -> name in the assembled graph.
    """
    graph = _renamed_graph(model, prefix, input_name)
    builder.nodes.extend(graph.node)
    builder.initializers.extend(graph.initializer)
    return {o.name: f"{prefix}{o.name}" for o in model.graph.output}


def strip_doc_strings(model: onnx.ModelProto) -> onnx.ModelProto:
    model.doc_string = ""
    model.graph.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""
    del model.metadata_props[:]
    return model


def opsets_of(nodes: list[onnx.NodeProto]) -> list[onnx.OperatorSetIdProto]:
    """The opset imports for ``nodes``: ai.onnx always, other domains when used."""
    used = {n.domain for n in nodes}
    return [helper.make_opsetid(d, v) for d, v in OPSET.items() if d == "" or d in used]


def imported_opsets(onnx_bytes: bytes) -> dict[str, int]:
    """The opsets a serialized model imports, ``ai.onnx`` for the default domain (what the card records:
    the same figures the gate's ``file.opset`` check reads from the file)."""
    model = onnx.load_model_from_string(onnx_bytes)
    return {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}


def base_model(b: GraphBuilder, n_features: int, output: str, name: str) -> onnx.ModelProto:
    """A model from ``input`` to ``output`` built from ``b``'s nodes (no calibrator, no label)."""
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output, TensorProto.DOUBLE, None)],
        initializer=b.initializers,
    )
    model = helper.make_model(graph, opset_imports=opsets_of(b.nodes), producer_name="lockgate",
                              producer_version="1")
    model.ir_version = IR_VERSION
    return strip_doc_strings(model)


def finish_model(builder: GraphBuilder, n_features: int, probabilities: str, n_classes: int,
                 label: str | None = None, graph_name: str = "lockgate") -> onnx.ModelProto:
    """Wrap up: ``label`` (ArgMax of ``probabilities`` unless given) and float32 ``probabilities``."""
    if label is None:
        label = builder.op("ArgMax", [probabilities], axis=1, keepdims=0)
    builder.nodes.append(helper.make_node("Cast", [label], ["label"], name="label_out", to=TensorProto.INT64))
    builder.nodes.append(helper.make_node("Cast", [probabilities], ["probabilities"],
                                          name="probabilities_out", to=TensorProto.FLOAT))
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
    ]
    return checked_model(builder, n_features, outputs, graph_name)


def checked_model(builder: GraphBuilder, n_features: int, outputs: list[onnx.ValueInfoProto],
                  graph_name: str) -> onnx.ModelProto:
    """``builder``'s nodes from ``input`` float32 [N, F] to ``outputs``: optimised
    (:func:`training.graph_passes.optimise`), checked, doc strings off."""
    graph = helper.make_graph(
        builder.nodes,
        graph_name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        outputs,
        initializer=builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=opsets_of(builder.nodes), producer_name="lockgate",
                              producer_version="1")
    model.ir_version = IR_VERSION
    optimise(model)  # dead, repeated and foldable nodes out (training.graph_passes)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the composed ONNX graph is invalid: {e}", "report this bug") from None
    return strip_doc_strings(model)


def _session(model_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def onnx_feeds(X: np.ndarray, C: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The graph's feeds: ``input`` float32, plus ``categorical`` strings when ``C`` has columns."""
    feeds = {INPUT: np.asarray(X, dtype=np.float32)}
    if C is not None and C.shape[1]:
        feeds[CATEGORICAL] = np.asarray(C, dtype=object)
    return feeds


def onnx_predict(model_bytes: bytes, X: np.ndarray, C: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Run the exported graph with ONNX Runtime: (label int64 [N], probabilities float32 [N, C])."""
    try:
        label, probs = _session(model_bytes).run(["label", "probabilities"], onnx_feeds(X, C))
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(
            f"ONNX Runtime cannot run the exported graph: {str(e).splitlines()[0][:300]}", "report this bug"
        ) from None
    return label, probs


def run_output(base: BaseGraph, X: np.ndarray) -> np.ndarray:
    """The base graph's ``output`` on rows ``X`` (float64)."""
    model = copy.deepcopy(base.model)
    model.ir_version = IR_VERSION
    try:
        (got,) = _session(model.SerializeToString()).run([base.output], {INPUT: np.asarray(X, np.float32)})
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(
            f"ONNX Runtime cannot run the base graph: {str(e).splitlines()[0][:300]}", "report this bug"
        ) from None
    return np.asarray(got, dtype=np.float64)
