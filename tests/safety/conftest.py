"""Fixtures for the safety gate: a real trained bundle, and a corpus of bad models built here.

The good bundle comes from ``training.train`` (real scikit-learn, real skl2onnx export). Hostile models
are small ONNX graphs written with ``onnx.helper`` that keep the bundle contract where they need to (one
input ``input`` float32 [N, F]; outputs ``label`` int64 [N] and ``probabilities`` float32 [N, C]) so each
is rejected by the check it targets, not by an earlier one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE, GateReport, ModelCard, sha256_file
from safety import GatePolicy, default_checks, run_gate

OPSET = 18


@pytest.fixture(scope="session")
def bundles_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safety-bundles")


@pytest.fixture(scope="session")
def good_bundle(bundles_root: Path) -> Path:
    """demo:1 — breast cancer, logistic regression + sigmoid calibration, exported by training."""
    from training import TrainConfig, train

    return train(
        TrainConfig(
            data="breast_cancer",
            model="logistic_regression",
            calibration="sigmoid",
            trials=2,
            seed=0,
            name="demo",
            version=1,
            out=bundles_root / "train",
            progress=False,
        )
    )


@pytest.fixture(scope="session")
def good_card(good_bundle: Path) -> ModelCard:
    return ModelCard.model_validate_json((good_bundle / CARD_FILE).read_text())


@pytest.fixture(scope="session")
def fast_policy() -> GatePolicy:
    """Small sandbox limits so the hostile cases end in seconds."""
    return GatePolicy().with_changes(
        sandbox={"memory_mb": 768, "cpu_seconds": 2, "wall_seconds": 3.0},
        resources={"batch1_repeats": 20, "max_batch_repeats": 3},
    )


@pytest.fixture()
def variant(good_bundle: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy the good bundle, optionally replacing model.onnx (bytes or a ModelProto) and the card.

    The card's ``export.onnx_sha256`` follows the new model unless ``keep_sha`` is set, so only the check
    under test objects.
    """
    counter = iter(range(1000))

    def make(
        model: onnx.ModelProto | bytes | None = None, *, card: dict | None = None, keep_sha: bool = False
    ) -> Path:
        target = tmp_path / f"demo-1-{next(counter)}"
        shutil.copytree(good_bundle, target)
        if model is not None:
            raw = model if isinstance(model, bytes) else model.SerializeToString()
            (target / MODEL_FILE).write_bytes(raw)
        data = card if card is not None else json.loads((target / CARD_FILE).read_text())
        if not keep_sha and (target / MODEL_FILE).is_file():
            data.setdefault("export", {})["onnx_sha256"] = sha256_file(target / MODEL_FILE)
        (target / CARD_FILE).write_text(json.dumps(data))
        return target

    return make


# ----------------------------------------------------------------------------------- hostile graphs
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


@pytest.fixture(scope="session")
def shape(good_card: ModelCard) -> tuple[int, int]:
    """(number of features, number of classes) of the good bundle."""
    return len(good_card.features), len(good_card.classes)


@pytest.fixture(scope="session")
def gate() -> Callable[..., GateReport]:
    """``gate(bundle, policy, *targets)``: run only the target checks and their prerequisites (fast), or
    every check when no target is named. Never writes gate.json for a partial run."""

    def run(bundle: Path, policy: GatePolicy, *targets: str, registry_url: str | None = None) -> GateReport:
        checks = default_checks()
        if not targets:
            return run_gate(bundle, policy, registry_url=registry_url)
        by_name = {c.name: c for c in checks}
        wanted: set[str] = set()
        todo = list(targets)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(by_name[name].requires)
        subset = [c for c in checks if c.name in wanted]
        return run_gate(bundle, policy, checks=subset, write=False, registry_url=registry_url)

    return run
