"""Building ONE ONNX graph: embed exported sub-models, add calibrator nodes, finish with the bundle outputs.

Every graph lockgate ships has input ``input`` float32 ``[N, F]`` and outputs ``label`` int64 ``[N]``
(index into the card's classes) and ``probabilities`` float32 ``[N, C]``. Bytes are deterministic: fixed
opsets, no doc strings, no timestamps, names derived from fixed prefixes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OPSET", "GraphBuilder", "embed_model", "finish_model", "strip_doc_strings"]

#: the opsets of every graph we assemble (ai.onnx, ai.onnx.ml)
OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
INPUT = "input"


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

    def const(self, value: Any, dtype: Any = np.float32, hint: str = "c") -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, domain: str = "",
           **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{out}_node", domain=domain,
                                           **attrs))
        return out

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: Any) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{outs[0]}_node", **attrs))
        return outs

    # small vocabulary used by calibrators and ensembles
    def softmax(self, x: str) -> str:
        return self.op("Softmax", [x], axis=1)

    def column(self, x: str, k: int) -> str:
        """``x[:, k:k+1]`` as [N, 1]."""
        return self.op("Gather", [x, self.const([k], np.int64)], axis=1)

    def concat(self, parts: list[str]) -> str:
        return self.op("Concat", parts, axis=1)

    def normalize_rows(self, x: str) -> str:
        return self.op("Div", [x, self.op("ReduceSum", [x, self.const([1], np.int64)], keepdims=1)])


def _rename_model(model: onnx.ModelProto, prefix: str, input_name: str) -> onnx.GraphProto:
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    inputs = [i.name for i in graph.input]
    if len(inputs) != 1:
        raise ValueError(f"sub-model must have exactly one input, got {inputs}")

    def new(name: str) -> str:
        if name == "":
            return name
        return input_name if name == inputs[0] else f"{prefix}{name}"

    for node in graph.node:
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ValueError(f"sub-model node {node.op_type} has a subgraph; cannot embed it")
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
    graph = _rename_model(model, prefix, input_name)
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


def finish_model(builder: GraphBuilder, n_features: int, probabilities: str, n_classes: int,
                 label: str | None = None, graph_name: str = "lockgate") -> onnx.ModelProto:
    """Wrap up: outputs ``label`` (ArgMax of ``probabilities`` unless given) and float32 ``probabilities``."""
    probs32 = builder.op("Cast", [probabilities], to=TensorProto.FLOAT)
    builder.nodes.append(helper.make_node("Identity", [probs32], ["probabilities"], name="probabilities_out"))
    if label is None:
        label = builder.op("ArgMax", [probs32], axis=1, keepdims=0)
    builder.nodes.append(helper.make_node("Cast", [label], ["label"], name="label_out", to=TensorProto.INT64))
    graph = helper.make_graph(
        builder.nodes,
        graph_name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes]),
        ],
        initializer=builder.initializers,
    )
    used = {n.domain for n in builder.nodes}
    opsets = [helper.make_opsetid(d, v) for d, v in OPSET.items() if d == "" or d in used]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="lockgate",
                              producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return strip_doc_strings(model)
