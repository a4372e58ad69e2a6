"""The corpus of bad models: each one is rejected, by the check it targets, within seconds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE, GateReport
from safety import run_gate
from safety.corpus import (
    cpu_bomb,
    custom_op,
    finish,
    linear_graph,
    memory_bomb,
    noise,
    with_external_weights,
)
from tests.bundles import read_gate


def statuses(report: GateReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report: GateReport, name: str):
    return next(c for c in report.checks if c.name == name)


def assert_rejected_by(report: GateReport, name: str, *fragments: str) -> None:
    result = check(report, name)
    assert not report.passed
    assert result.status == "fail", (name, result)
    for fragment in fragments:
        assert fragment.lower() in result.message.lower(), (fragment, result.message)
    assert not any(c.status == "pass" and c.name == name for c in report.checks)


def test_good_bundle_passes_every_check(good_bundle: Path, fast_policy):
    report = run_gate(good_bundle, fast_policy)
    assert report.passed, [(c.name, c.status, c.message) for c in report.checks if c.status != "pass"]
    assert statuses(report)["quality.regression"] == "skip" and statuses(report)["serve"] == "skip"
    assert {s for n, s in statuses(report).items() if n not in {"quality.regression", "serve"}} == {"pass"}
    saved = read_gate(good_bundle)
    from cascade_registry.artifacts import ModelBundle

    bundle = ModelBundle.load(good_bundle)
    assert saved.binds(bundle.onnx_sha256) and str(saved.ref) == "demo:1"
    assert check(report, "parity").value <= 1e-4
    assert check(report, "quality").value["f1_macro"] > 0.9
    assert check(report, "inputs").value["failed"] == 0
    assert all(c.seconds >= 0 for c in report.checks)


# ------------------------------------------------------------------------------------ file checks
def test_truncated_file(variant, good_bundle, fast_policy):
    raw = (good_bundle / MODEL_FILE).read_bytes()
    report = run_gate(variant(raw[: len(raw) // 3]), fast_policy)
    assert_rejected_by(report, "file.parse", "not a valid ONNX protobuf")
    assert statuses(report)["load"] == "skip"


def test_random_bytes(variant, fast_policy):
    report = run_gate(variant(np.random.default_rng(0).bytes(4096)), fast_policy)
    assert_rejected_by(report, "file.parse")
    assert {statuses(report)[n] for n in ("file.checker", "load", "contract", "inputs")} == {"skip"}


def test_empty_and_missing_and_linked_model_files(variant, fast_policy, tmp_path):
    assert_rejected_by(run_gate(variant(b""), fast_policy), "file.size", "empty")
    missing = variant()
    (missing / MODEL_FILE).unlink()
    report = run_gate(missing, fast_policy)
    assert_rejected_by(report, "file.size", "missing")
    assert report.onnx_sha256 == ""
    linked = variant()
    real = tmp_path / "elsewhere.onnx"
    (linked / MODEL_FILE).rename(real)
    (linked / MODEL_FILE).symlink_to(real)
    assert_rejected_by(run_gate(linked, fast_policy), "file.size", "symbolic link")


def test_size_limit(good_bundle, fast_policy, gate):
    report = gate(good_bundle, fast_policy.with_changes(file={"max_size_mb": 0.0001}), "file.size")
    assert_rejected_by(report, "file.size", "file.max_size_mb")


def test_sha_mismatch_is_the_only_failure(variant, good_card, fast_policy):
    card = json.loads(good_card.model_dump_json())
    card["export"]["onnx_sha256"] = "0" * 64
    report = run_gate(variant(card=card, keep_sha=True), fast_policy)
    assert_rejected_by(report, "file.sha256", "re-export")
    assert [c.name for c in report.checks if c.status not in {"pass", "skip"}] == ["file.sha256"]


def test_checker_failure(variant, shape, fast_policy):
    graph = linear_graph(*shape)
    graph.node[0].input[1] = "ghost"  # an input that no node, initializer or graph input defines
    report = run_gate(variant(finish(graph)), fast_policy)
    assert_rejected_by(report, "file.checker", "onnx.checker refused")


def test_custom_domain_operator(variant, shape, fast_policy):
    report = run_gate(variant(finish(linear_graph(*shape, mid=custom_op), {"com.evil": 1})), fast_policy)
    assert_rejected_by(report, "file.domains", "com.evil", "Pwn")
    assert statuses(report)["load"] == "skip"


def test_opset_outside_policy(variant, shape, fast_policy, gate):
    policy = fast_policy.with_changes(file={"opsets": {"ai.onnx": [9, 17], "ai.onnx.ml": [1, 5]}})
    report = gate(variant(finish(linear_graph(*shape))), policy, "file.opset")
    assert_rejected_by(report, "file.opset", "ai.onnx opset 18 is outside [9, 17]")


@pytest.mark.parametrize(
    "location, why",
    [
        ("../secret.bin", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("sub/../../x.bin", "'..'"),
        ("weights.bin", "file.allow_external_data = false"),
    ],
)
def test_external_data_refused_before_opening(variant, shape, fast_policy, location, why):
    bundle = variant(with_external_weights(finish(linear_graph(*shape)), location))
    trap = bundle.parent / "secret.bin"
    if not trap.exists():
        os.mkfifo(trap)  # opening this FIFO for reading would block: proof that nothing opened it
    start = time.monotonic()
    report = run_gate(bundle, fast_policy)
    assert time.monotonic() - start < 15
    assert_rejected_by(report, "file.external_data", why, "nothing was opened")
    assert statuses(report)["file.parse"] == "pass"
    assert {statuses(report)[n] for n in ("file.checker", "load", "contract")} == {"skip"}


def test_external_data_through_a_symlink(variant, shape, fast_policy, tmp_path):
    secret = tmp_path / "outside.bin"
    secret.write_bytes(b"\0" * 4 * shape[0] * shape[1])
    bundle = variant(with_external_weights(finish(linear_graph(*shape)), "weights.bin"))
    (bundle / "weights.bin").symlink_to(secret)
    report = run_gate(bundle, fast_policy.with_changes(file={"allow_external_data": True}))
    assert_rejected_by(report, "file.external_data", "symbolic link")


def test_external_data_inside_the_bundle_is_allowed_when_the_policy_says_so(
    variant, shape, fast_policy, gate
):
    n_features, n_classes = shape
    bundle = variant(with_external_weights(finish(linear_graph(n_features, n_classes)), "weights.bin"))
    w = (np.random.default_rng(0).normal(size=(n_features, n_classes)) * 1e-4).astype(np.float32)
    (bundle / "weights.bin").write_bytes(w.tobytes())
    report = gate(
        bundle, fast_policy.with_changes(file={"allow_external_data": True}), "file.checker", "load"
    )
    assert statuses(report)["file.external_data"] == "pass"
    assert statuses(report)["file.checker"] == "pass" and statuses(report)["load"] == "pass"


# ------------------------------------------------------------------------------------ runtime checks
def test_memory_bomb_is_contained(variant, shape, fast_policy):
    start = time.monotonic()
    report = run_gate(variant(finish(linear_graph(*shape, mid=memory_bomb))), fast_policy)
    assert time.monotonic() - start < 30
    assert statuses(report)["load"] == "pass"
    assert_rejected_by(report, "contract", "allocat")
    assert {statuses(report)[n] for n in ("inputs", "resources", "determinism", "parity", "quality")} == {
        "skip"
    }


def test_cpu_bomb_is_killed(variant, shape, fast_policy):
    start = time.monotonic()
    report = run_gate(variant(finish(linear_graph(*shape, mid=cpu_bomb))), fast_policy)
    assert time.monotonic() - start < 30
    result = check(report, "contract")
    assert result.status == "fail" and not report.passed
    assert "RLIMIT_CPU" in result.message or "wall-clock" in result.message, result.message


def test_wall_clock_timeout_kills_a_hang(variant, shape, fast_policy):
    # CPU limit above the wall limit: the wall-clock timeout has to end it
    policy = fast_policy.with_changes(sandbox={"cpu_seconds": 30, "wall_seconds": 2.0})
    report = run_gate(variant(finish(linear_graph(*shape, mid=cpu_bomb))), policy)
    assert_rejected_by(report, "contract", "wall-clock limit")


def test_wrong_output_contract(variant, shape, fast_policy):
    report = run_gate(variant(finish(linear_graph(*shape, names=("cls", "probs")))), fast_policy)
    assert_rejected_by(report, "contract", "expected 'label' and 'probabilities'")


def test_wrong_feature_count(variant, shape, fast_policy):
    n_features, n_classes = shape
    report = run_gate(variant(finish(linear_graph(n_features + 2, n_classes))), fast_policy)
    assert_rejected_by(report, "contract", f"takes {n_features + 2} features, the card lists {n_features}")


def test_wrong_class_count(variant, shape, fast_policy):
    n_features, n_classes = shape
    report = run_gate(variant(finish(linear_graph(n_features, n_classes + 1))), fast_policy)
    assert_rejected_by(report, "contract", f"the card lists {n_classes} classes")


def test_nan_producing_model(variant, shape, fast_policy, gate):
    # valid on the reference rows; exp() overflows far outside the training range -> inf/inf = NaN
    report = gate(variant(finish(linear_graph(*shape, naive_softmax=True))), fast_policy, "inputs")
    assert statuses(report)["contract"] == "pass"
    assert_rejected_by(report, "inputs", "far_above_range", "NaN")


def test_non_deterministic_model(variant, shape, fast_policy, gate):
    report = gate(variant(finish(linear_graph(*shape, mid=noise))), fast_policy, "determinism")
    assert_rejected_by(report, "determinism", "probabilities", "same session")


def test_resource_limits(good_bundle, fast_policy, gate):
    policy = fast_policy.with_changes(resources={"p50_ms_batch1": 1e-6, "cpu_ms_per_row": 1e-9})
    report = gate(good_bundle, policy, "resources")
    assert_rejected_by(report, "resources", "p50_ms_batch1", "cpu_ms_per_row")


def test_load_limits(good_bundle, fast_policy, gate):
    report = gate(good_bundle, fast_policy.with_changes(load={"max_rss_mb": 1.0}), "load")
    assert_rejected_by(report, "load", "peak RSS")


# ------------------------------------------------------------------------------------ reference and card
def test_parity_broken(variant, fast_policy, gate):
    bundle = variant()
    with np.load(bundle / "reference.npz") as npz:
        arrays = dict(npz)
    arrays["probabilities"] = np.clip(arrays["probabilities"] + [0.01, -0.01], 0, 1)
    np.savez(bundle / "reference.npz", **arrays)
    assert_rejected_by(gate(bundle, fast_policy, "parity"), "parity", "parity.max_abs_diff")


def test_quality_floor_and_card_claim(variant, good_card, fast_policy, gate):
    report = gate(
        variant(), fast_policy.with_changes(quality={"min_metric": 0.999, "max_ece": 0.001}), "quality"
    )
    assert_rejected_by(report, "quality", "quality.min_metric", "quality.max_ece")
    card = json.loads(good_card.model_dump_json())
    card["metrics"]["f1_macro"] = 0.5
    assert_rejected_by(
        gate(variant(card=card), fast_policy, "quality"), "quality", "the card claims f1_macro 0.5000"
    )


def test_missing_reference_data(variant, fast_policy, gate):
    bundle = variant()
    (bundle / "reference.npz").write_bytes(b"not a zip")
    report = gate(bundle, fast_policy, "parity", "quality")
    assert_rejected_by(report, "parity", "reference.npz")
    assert_rejected_by(report, "quality", "reference.npz")


def test_incomplete_card(variant, good_card, fast_policy, gate):
    card = json.loads(good_card.model_dump_json())
    card["how_to_consume"] = " "
    card["dataset"]["splits_disjoint"] = False
    card["hyperparameters"] = {}
    report = gate(variant(card=card), fast_policy, "card.completeness")
    assert_rejected_by(report, "card.completeness", "how_to_consume", "splits_disjoint", "hyperparameters")


def test_unreadable_card(variant, fast_policy):
    bundle = variant()
    (bundle / CARD_FILE).write_text('{"schema_version": "1"}')
    report = run_gate(bundle, fast_policy)
    assert_rejected_by(report, "card.schema", "does not match the card schema")
    assert report.ref is None
    assert statuses(report)["file.parse"] == "pass" and statuses(report)["load"] == "pass"
    assert statuses(report)["contract"] == "skip"


def test_model_file_never_parsed_in_the_gate_process(variant, fast_policy):
    # a deeply nested protobuf could crash a parser; the gate process must survive anything
    nested = b"".join(b"\x3a\xff\xff\xff\x0f" for _ in range(5000))  # graph -> node ... nesting
    report = run_gate(variant(nested + bytes(200)), fast_policy)
    assert statuses(report)["file.parse"] == "fail"


def test_helper_graph_is_valid_baseline(variant, shape, fast_policy, gate):
    """The corpus's base graph passes the file and contract checks: the failures above come from the flaw."""
    report = gate(variant(finish(linear_graph(*shape))), fast_policy, "inputs", "file.checker")
    s = statuses(report)
    assert {s[n] for n in ("file.parse", "file.checker", "file.domains", "load", "contract", "inputs")} == {
        "pass"
    }
    assert helper.printable_graph is not None


def test_card_allowing_absurd_batches_is_capped_and_fails(variant, good_card, fast_policy, gate):
    card = json.loads(good_card.model_dump_json())
    card["input_policy"]["max_batch_rows"] = 10**9  # the gate must not try to build this batch
    report = gate(variant(card=card), fast_policy, "resources", "inputs")
    assert_rejected_by(report, "resources", "allows batches of 1000000000 rows", "max_batch_rows_limit")
    assert check(report, "inputs").status == "pass"


def test_external_data_hidden_in_a_loop_body_is_found(variant, shape, fast_policy):
    model = finish(linear_graph(*shape, mid=cpu_bomb))
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    tensor = body.initializer[0]
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/shadow"
    report = run_gate(variant(model), fast_policy)
    assert_rejected_by(report, "file.external_data", "zero_b", "'..'")
    assert check(report, "load").status == "skip"  # the CPU bomb never ran
