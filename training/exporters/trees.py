"""Our own ONNX builder for ``HistGradientBoostingClassifier`` (skl2onnx 1.20 fails on it with
scikit-learn 1.9: it passes numpy booleans where ONNX wants ints).

The trees become one ``ai.onnx.ml.TreeEnsembleRegressor`` producing the raw scores (scikit-learn's
``decision_function``: baseline + sum of leaf values, one column per class for multiclass). Thresholds are
rounded down to float32, which keeps ``x <= t`` exact for float32 inputs; probabilities are derived in
float64 (sigmoid for binary, softmax for multiclass) exactly as scikit-learn's loss does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.exporters.skl import floor_to_float32
from training.graph import INPUT, IR_VERSION, OPSET, BaseGraph, Kind

__all__ = ["export_hist_gradient_boosting"]


_ATTRS = (
    "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
    "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
    "target_treeids", "target_nodeids", "target_ids", "target_weights",
)


def _add_node(attrs: dict[str, list], tree_id: int, i: int, node: Any, threshold: float, k: int) -> None:
    """One node of tree ``tree_id`` (a leaf adds its value to target ``k``)."""
    attrs["nodes_treeids"].append(tree_id)
    attrs["nodes_nodeids"].append(i)
    if node["is_leaf"]:
        for key, value in (("nodes_featureids", 0), ("nodes_modes", "LEAF"), ("nodes_values", 0.0),
                           ("nodes_truenodeids", 0), ("nodes_falsenodeids", 0),
                           ("nodes_missing_value_tracks_true", 0), ("target_treeids", tree_id),
                           ("target_nodeids", i), ("target_ids", k),
                           ("target_weights", float(node["value"]))):
            attrs[key].append(value)
        return
    if node["is_categorical"]:
        raise NotImplementedError("categorical splits are not exported")
    attrs["nodes_featureids"].append(int(node["feature_idx"]))
    attrs["nodes_modes"].append("BRANCH_LEQ")
    attrs["nodes_values"].append(threshold)
    attrs["nodes_truenodeids"].append(int(node["left"]))
    attrs["nodes_falsenodeids"].append(int(node["right"]))
    attrs["nodes_missing_value_tracks_true"].append(int(bool(node["missing_go_to_left"])))


def _tree_attributes(estimator: Any) -> dict[str, list]:
    """The ``TreeEnsembleRegressor`` attributes of every tree (thresholds rounded down to float32)."""
    attrs: dict[str, list] = {key: [] for key in _ATTRS}
    tree_id = 0
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            thresholds = floor_to_float32(nodes["num_threshold"].astype(np.float64))
            for i, node in enumerate(nodes):
                _add_node(attrs, tree_id, i, node, float(thresholds[i]), k)
            tree_id += 1
    return attrs


def _probability_nodes(k_per_iter: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``hgb_raw`` -> ``hgb_proba``: sigmoid (binary, ``[1 - p, p]``) or softmax, in float64."""
    if k_per_iter > 1:
        return [helper.make_node("Softmax", ["hgb_raw"], ["hgb_proba"], axis=1, name="hgb_softmax")], []
    nodes = [
        helper.make_node("Sigmoid", ["hgb_raw"], ["hgb_p1"], name="hgb_sigmoid"),
        helper.make_node("Sub", ["hgb_one", "hgb_p1"], ["hgb_p0"], name="hgb_p0"),
        helper.make_node("Concat", ["hgb_p0", "hgb_p1"], ["hgb_proba"], axis=1, name="hgb_concat"),
    ]
    return nodes, [numpy_helper.from_array(np.array(1.0), "hgb_one")]


def export_hist_gradient_boosting(estimator: Any, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
    k_per_iter = int(estimator.n_trees_per_iteration_)
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
    nodes_out = [
        helper.make_node(
            "TreeEnsembleRegressor",
            [INPUT],
            ["hgb_raw32"],
            domain="ai.onnx.ml",
            n_targets=k_per_iter,
            aggregate_function="SUM",
            post_transform="NONE",
            base_values=[float(b) for b in baseline],
            name="hgb_trees",
            **_tree_attributes(estimator),
        ),
        helper.make_node("Cast", ["hgb_raw32"], ["hgb_raw"], to=TensorProto.DOUBLE, name="hgb_cast"),
    ]
    inits: list[onnx.TensorProto] = []
    output = "hgb_raw"
    if kind == "proba":
        tail, inits = _probability_nodes(k_per_iter)
        nodes_out += tail
        output = "hgb_proba"
    graph = helper.make_graph(
        nodes_out,
        "hist_gradient_boosting",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output, TensorProto.DOUBLE, [None, None])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(domain, version) for domain, version in OPSET.items()]
    )
    model.ir_version = IR_VERSION
    return BaseGraph(
        model=model,
        output=output,
        precision="float32 trees (thresholds rounded down to float32: exact for float32 inputs; leaf values "
        "summed in float32), raw scores cast to float64 for the sigmoid/softmax and calibrator",
        converter="lockgate TreeEnsembleRegressor builder",
    )
