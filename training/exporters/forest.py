"""Our own ONNX builder for ``RandomForestClassifier``: the node table skl2onnx 1.20 writes, built with NumPy.

skl2onnx adds the nodes one at a time in Python and searches a float32 switch point for every threshold
(``find_switch_point``): 8.8 CPU seconds for a 100-tree forest of 124 000 nodes, five times per
cross-fitted model. Here every tree's arrays are copied at once (0.4 s for that forest). The node is the same
``ai.onnx.ml.TreeEnsembleClassifier`` as skl2onnx's on a float64 input: thresholds rounded
down to float32 (``x <= t`` unchanged for float32 inputs, which is what scikit-learn's trees compare);
each leaf's class frequencies divided by the number of trees and summed (``aggregate SUM``, in float64
inside ONNX Runtime for a float64 input); binary forests keep the positive class's weight only, and
ONNX Runtime returns ``[1 - p, p]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from training.exporters.skl import floor_to_float32
from training.graph import INPUT, IR_VERSION, OPSET, BaseGraph, Kind

__all__ = ["export_random_forest"]

_NODE_KEYS = ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
              "nodes_truenodeids", "nodes_falsenodeids")
_CLASS_KEYS = ("class_treeids", "class_nodeids", "class_ids", "class_weights")


def _tree_columns(tree: Any, tree_id: int, tree_weight: float, binary: bool) -> dict[str, np.ndarray]:
    """One fitted ``tree_``'s node and leaf-weight columns."""
    n = int(tree.node_count)
    ids = np.arange(n)
    branch = (tree.children_left > ids) | (tree.children_right > ids)
    leaves = ids[~branch]
    values = np.asarray(tree.value[leaves, 0, :], dtype=np.float64)
    totals = values.sum(axis=1)
    weights = values * (tree_weight / np.where(totals != 0.0, totals, 1.0))[:, None]
    if binary:
        weights = weights[:, 1:]
    k = weights.shape[1]
    return {
        "nodes_treeids": np.full(n, tree_id),
        "nodes_nodeids": ids,
        "nodes_featureids": np.where(branch, tree.feature, 0),
        "nodes_modes": np.where(branch, "BRANCH_LEQ", "LEAF"),
        "nodes_values": np.where(branch, floor_to_float32(tree.threshold), 0.0),
        "nodes_truenodeids": np.where(branch, tree.children_left, 0),
        "nodes_falsenodeids": np.where(branch, tree.children_right, 0),
        "class_treeids": np.full(len(leaves) * k, tree_id),
        "class_nodeids": np.repeat(leaves, k),
        "class_ids": np.tile(np.arange(k), len(leaves)),
        "class_weights": weights.ravel(),
    }


def _forest_attributes(estimator: Any, n_classes: int) -> dict[str, Any]:
    members = estimator.estimators_
    parts = [_tree_columns(m.tree_, i, 1.0 / len(members), n_classes == 2) for i, m in enumerate(members)]
    attrs: dict[str, Any] = {}
    for key in _NODE_KEYS + _CLASS_KEYS:
        column = np.concatenate([p[key] for p in parts])
        if key == "nodes_modes":
            attrs[key] = column.tolist()
        elif key in ("nodes_values", "class_weights"):
            attrs[key] = column.astype(np.float32)
        else:
            attrs[key] = column.astype(np.int64).tolist()
    attrs["nodes_missing_value_tracks_true"] = [0] * len(attrs["nodes_nodeids"])
    attrs["nodes_hitrates"] = np.ones(len(attrs["nodes_nodeids"]), dtype=np.float32)
    attrs["classlabels_int64s"] = [int(c) for c in estimator.classes_]
    return attrs


def export_random_forest(estimator: Any, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
    nodes = [
        helper.make_node("Cast", [INPUT], ["rf_input64"], to=TensorProto.DOUBLE, name="rf_cast_in"),
        helper.make_node("TreeEnsembleClassifier", ["rf_input64"], ["rf_label", "rf_proba"],
                         domain="ai.onnx.ml", post_transform="NONE", name="rf_trees",
                         **_forest_attributes(estimator, n_classes)),
    ]
    inits = []
    output = "rf_proba"
    if kind == "response" and n_classes == 2:  # the positive class's probability (training.response)
        inits = [numpy_helper.from_array(np.array([v], dtype=np.int64), name)
                 for name, v in (("rf_last_st", -1), ("rf_last_en", 2**62), ("rf_last_ax", 1))]
        nodes.append(helper.make_node("Slice", ["rf_proba", "rf_last_st", "rf_last_en", "rf_last_ax"],
                                      ["rf_response"], name="rf_last_col"))
        output = "rf_response"
    graph = helper.make_graph(
        nodes, "random_forest",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, None])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()])
    model.ir_version = IR_VERSION
    return BaseGraph(
        model=model, output=output,
        precision="float32 input cast to float64; thresholds rounded down to float32 (exact for float32 "
        "inputs); leaf frequencies as float32 attributes, summed in float64; probabilities float32, cast to "
        "float64 for the calibrator",
        converter="lockgate TreeEnsembleClassifier builder",
    )
