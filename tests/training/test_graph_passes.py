"""training.graph_passes: the composed graph loses dead, repeated and foldable nodes, not its function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from training.graph import IR_VERSION
from training.graph_passes import optimise

F, K = 6, 2


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _folds(n_folds: int, intercept: bool, seed: int = 0) -> onnx.ModelProto:
    """``n_folds`` standardise -> linear members averaged (each with a label branch nobody reads), the
    shape skl2onnx gives a cross-fitted logistic regression."""
    rng = np.random.default_rng(seed)
    nodes, inits, scores = [], [], []
    for k in range(n_folds):
        p = f"k{k}/"
        inits += [
            numpy_helper.from_array(rng.normal(size=F), p + "mean"),
            numpy_helper.from_array(rng.uniform(0.5, 3.0, size=F), p + "scale"),
            numpy_helper.from_array(rng.normal(size=(F, K)), p + "W"),
            numpy_helper.from_array(rng.normal(size=(1, K)), p + "b"),
        ]
        nodes += [
            helper.make_node("Cast", ["input"], [p + "x64"], to=TensorProto.DOUBLE),
            helper.make_node("Sub", [p + "x64", p + "mean"], [p + "centred"]),
            helper.make_node("Div", [p + "centred", p + "scale"], [p + "z"]),
            helper.make_node("MatMul", [p + "z", p + "W"], [p + "mm"], name=p + "matmul"),
        ]
        if intercept:
            nodes.append(helper.make_node("Add", [p + "mm", p + "b"], [p + "scores"]))
        else:
            nodes.append(helper.make_node("Identity", [p + "mm"], [p + "scores"]))
        nodes.append(helper.make_node("ArgMax", [p + "scores"], [p + "unused_label"], axis=1))
        scores.append(p + "scores")
    nodes += [
        helper.make_node("Sum", scores, ["mean_scores"]),
        helper.make_node("Softmax", ["mean_scores"], ["p64"], axis=1),
        helper.make_node("Cast", ["p64"], ["probabilities"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, "folds", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, F])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, K])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    return model


def test_passes_keep_the_function_and_drop_the_waste():
    x = np.random.default_rng(1).normal(size=(64, F)).astype(np.float32) * 4
    for intercept in (True, False):
        before = _folds(5, intercept)
        (want,) = _session(before).run(None, {"input": x})
        after = optimise(_folds(5, intercept))
        onnx.checker.check_model(after)
        (got,) = _session(after).run(None, {"input": x})
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        ops = [n.op_type for n in after.graph.node]
        assert ops.count("Cast") == 2, ops  # one cast of the input for all folds, one of the answer
        assert "Sub" not in ops and "Div" not in ops and "ArgMax" not in ops, ops
        assert ops.count("MatMul") == 5 and ops.count("Add") == 5, ops
        names = {i for n in after.graph.node for i in n.input}
        assert all(t.name in names for t in after.graph.initializer), "an initializer nobody reads"


def test_passes_are_deterministic():
    one = optimise(_folds(3, True)).SerializeToString(deterministic=True)
    two = optimise(_folds(3, True)).SerializeToString(deterministic=True)
    assert one == two


def test_a_shared_or_exported_intermediate_is_not_folded():
    model = _folds(1, True)
    model.graph.output.append(helper.make_tensor_value_info("k0/z", TensorProto.DOUBLE, [None, F]))
    after = optimise(model)
    ops = [n.op_type for n in after.graph.node]
    assert "Sub" in ops and "Div" in ops, "a standardised input the graph returns must stay"


def test_the_trained_demo_graph_has_no_dead_or_repeated_nodes(trained_demo: Path):
    model = onnx.load(trained_demo / "model.onnx")
    ops = [n.op_type for n in model.graph.node]
    assert "Div" not in ops, ops  # the scaler is folded into each member's weights
    keys = [(n.op_type, tuple(n.input), tuple(a.SerializeToString() for a in n.attribute))
            for n in model.graph.node]
    assert len(keys) == len(set(keys)), "a node is computed twice"
    reached = {o.name for o in model.graph.output}
    for node in reversed(model.graph.node):
        assert any(o in reached for o in node.output), f"{node.op_type} {node.name} reaches no output"
        reached.update(node.input)
