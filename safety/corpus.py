"""A corpus of hostile and broken ONNX models, for the gate's own tests and benchmark.

In the spirit of scikit-learn's ``estimator_checks`` shipping its test estimators: every builder keeps
the bundle contract (one input ``input`` float32 [N, F]; outputs ``label`` int64 [N] and
``probabilities`` float32 [N, C]) except for the flaw it is about, so each model is rejected by the
check it targets. :func:`hostile_models` returns them all by name with the check expected to reject them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = [
    "HOSTILE_CHECKS",
    "cpu_bomb",
    "custom_op",
    "finish",
    "hostile_models",
    "linear_graph",
    "memory_bomb",
    "noise",
    "with_external_weights",
]

OPSET = 18


def finish(
    graph: onnx.GraphProto, extra_opsets: dict[str, int] | None = None, opset: int = OPSET
) -> onnx.ModelProto:
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=imports, producer_name="tests.safety")
    model.ir_version = 10  # what ONNX Runtime 1.31 reads
    return model


def linear_graph(
    n_in: int,
    n_classes: int,
    *,
    mid: Callable[[str], tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]] | None = None,
    naive_softmax: bool = False,
    names: tuple[str, str] = ("label", "probabilities"),
    scale: float = 1e-4,
) -> onnx.GraphProto:
    """input [N, n_in] -> z = input @ W -> (mid(z)) -> softmax -> probabilities [N, C], label = argmax.

    ``mid`` injects hostile nodes between the logits and the softmax; ``naive_softmax`` computes
    exp(z) / sum(exp(z)), which turns into NaN once z overflows float32.
    """
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(n_in, n_classes)) * scale).astype(np.float32)
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel().tolist()),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    nodes = [helper.make_node("MatMul", ["input", "W"], ["z"])]
    logits = "z"
    if mid is not None:
        more_nodes, more_inits, logits = mid("z")
        nodes += more_nodes
        inits += more_inits
    if naive_softmax:
        nodes += [
            helper.make_node("Exp", [logits], ["e"]),
            helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),
            helper.make_node("Div", ["e", "s"], [names[1]]),
        ]
    else:
        nodes.append(helper.make_node("Softmax", [logits], [names[1]], axis=1))
    nodes.append(helper.make_node("ArgMax", [names[1]], [names[0]], axis=1, keepdims=0))
    return helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_in])],
        [
            helper.make_tensor_value_info(names[0], TensorProto.INT64, [None]),
            helper.make_tensor_value_info(names[1], TensorProto.FLOAT, [None, n_classes]),
        ],
        inits,
    )


def memory_bomb(z: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Allocate (N*20000) x (C*20000) floats — hundreds of GB — from the input's shape, then add 0 * sum."""
    nodes = [
        helper.make_node("Shape", [z], ["sh"]),
        helper.make_node("Mul", ["sh", "k"], ["big_shape"]),
        helper.make_node(
            "ConstantOfShape",
            ["big_shape"],
            ["big"],
            value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", [z, "nothing"], ["z_bomb"]),
    ]
    inits = [
        helper.make_tensor("k", TensorProto.INT64, [2], [20000, 20000]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    return nodes, inits, "z_bomb"


def cpu_bomb(z: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """A Loop adding 0 to the logits 10**15 times."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "zero_b"], ["acc_out"]),
        ],
        "spin",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor("zero_b", TensorProto.FLOAT, [], [0.0])],
    )
    nodes = [helper.make_node("Loop", ["trips", "keep_going", z], ["z_spun"], body=body)]
    inits = [
        helper.make_tensor("trips", TensorProto.INT64, [], [10**15]),
        helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
    ]
    return nodes, inits, "z_spun"


def custom_op(z: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    return [helper.make_node("Pwn", [z], ["z_pwned"], domain="com.evil")], [], "z_pwned"


def noise(z: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Unseeded random noise on the logits: a non-deterministic model."""
    return (
        [
            helper.make_node("RandomUniformLike", [z], ["u"], low=0.0, high=1.0),
            helper.make_node("Add", [z, "u"], ["z_noisy"]),
        ],
        [],
        "z_noisy",
    )


def with_external_weights(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    """Mark the weight tensor W as stored outside the file, at ``location``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    w = next(t for t in model.graph.initializer if t.name == "W")
    size = len(w.float_data) * 4
    del w.float_data[:]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return model


#: corpus name -> the check that must reject it
HOSTILE_CHECKS = {
    "truncated": "file.parse",
    "random_bytes": "file.parse",
    "checker_failure": "file.checker",
    "custom_domain": "file.domains",
    "external_data_dotdot": "file.external_data",
    "external_data_absolute": "file.external_data",
    "memory_bomb": "contract",
    "cpu_bomb": "contract",
    "wrong_outputs": "contract",
    "wrong_feature_count": "contract",
    "nan_far_out_of_range": "inputs",
    "non_deterministic": "determinism",
}


def hostile_models(n_features: int, n_classes: int, good: bytes) -> dict[str, bytes]:
    """Every corpus model as file bytes (``good`` is a valid model.onnx to truncate)."""
    base = (n_features, n_classes)
    broken = linear_graph(*base)
    broken.node[0].input[1] = "ghost"  # an input nobody defines
    models: dict[str, onnx.ModelProto | bytes] = {
        "truncated": good[: len(good) // 3],
        "random_bytes": np.random.default_rng(0).bytes(4096),
        "checker_failure": finish(broken),
        "custom_domain": finish(linear_graph(*base, mid=custom_op), {"com.evil": 1}),
        "external_data_dotdot": with_external_weights(finish(linear_graph(*base)), "../secret.bin"),
        "external_data_absolute": with_external_weights(finish(linear_graph(*base)), "/etc/passwd"),
        "memory_bomb": finish(linear_graph(*base, mid=memory_bomb)),
        "cpu_bomb": finish(linear_graph(*base, mid=cpu_bomb)),
        "wrong_outputs": finish(linear_graph(*base, names=("cls", "probs"))),
        "wrong_feature_count": finish(linear_graph(n_features + 2, n_classes)),
        "nan_far_out_of_range": finish(linear_graph(*base, naive_softmax=True)),
        "non_deterministic": finish(linear_graph(*base, mid=noise)),
    }
    return {k: v if isinstance(v, bytes) else v.SerializeToString() for k, v in models.items()}
