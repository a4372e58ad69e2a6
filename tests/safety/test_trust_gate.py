"""The gate's side of issue 12: a signed verdict over every file (1, 2), hostile cards and links (4),
the gate's own evidence (7), isolation (8), and the smaller findings (9). Each test fails on the gate
before these changes."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from cascade_registry.artifacts import CARD_FILE, GATE_FILE, CheckResult
from cascade_registry.attestation import (
    REQUIRED_CHECKS,
    AttestationError,
    key_id,
    open_envelope,
    read_envelope,
)
from cascade_registry.gate_policy import STRICTER, _leaves, policy_digest
from cascade_registry.manifest import manifest_of
from safety import GatePolicy, default_checks, run_gate
from safety.checks import outcome
from safety.cli import main
from safety.corpus import finish, linear_graph
from safety.isolation import Isolation
from safety.keygen import main as keygen_main
from safety.sandbox import SandboxRun, _read_outputs
from tests.bundles import TEST_KEY, write_test_key


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report, name: str) -> CheckResult:
    return next(c for c in report.checks if c.name == name)


def test_the_verdict_is_signed_over_every_file(variant, fast_policy) -> None:
    bundle = variant()
    (bundle / "extra.bin").write_bytes(b"external data")
    report = run_gate(bundle, fast_policy, sign_key=TEST_KEY)
    statement, kid = open_envelope(
        read_envelope(bundle / GATE_FILE), {key_id(TEST_KEY): TEST_KEY.public_key()}
    )
    assert kid == key_id(TEST_KEY) and statement.predicate.passed == report.passed
    names = {s.name for s in statement.subject}
    assert names == {"model.onnx", "card.json", "reference.npz", "reliability.png", "extra.bin"}
    assert {s.name: s.digest["sha256"] for s in statement.subject} == manifest_of(bundle).digests()
    p = statement.predicate
    assert p.policy_sha256 == policy_digest(p.policy) and p.tool_version and p.isolation
    assert [c.name for c in p.checks] == list(REQUIRED_CHECKS)
    assert stat.S_IMODE((bundle / GATE_FILE).stat().st_mode) == 0o644  # like the rest of the bundle


def test_without_a_key_the_verdict_is_unsigned(variant, fast_policy) -> None:
    bundle = variant()
    run_gate(bundle, fast_policy)
    envelope = read_envelope(bundle / GATE_FILE)
    assert envelope.signatures == []
    with pytest.raises(AttestationError, match="not signed"):
        open_envelope(envelope, {})


def test_the_battery_and_the_policy_schema_match_what_the_registry_demands() -> None:
    assert tuple(c.name for c in default_checks()) == REQUIRED_CHECKS
    assert set(_leaves(GatePolicy().model_dump(mode="json"))) == set(STRICTER)


def test_keygen_and_signed_check_from_the_cli(variant, tmp_path: Path, capsys, monkeypatch) -> None:
    prefix = tmp_path / "gate-key"
    assert keygen_main(["--out", str(prefix)]) == 0
    assert stat.S_IMODE(prefix.stat().st_mode) == 0o600 and (tmp_path / "gate-key.pub").is_file()
    assert keygen_main(["--out", str(prefix)]) == 2  # never overwritten
    policy = tmp_path / "fast.toml"
    policy.write_text("[resources]\nbatch1_repeats = 20\nmax_batch_repeats = 3\n")
    bundle = variant()
    assert main([str(bundle), "--policy", str(policy), "--sign-key", str(prefix), "--quiet"]) == 0
    assert "signed by key" in capsys.readouterr().out
    assert read_envelope(bundle / GATE_FILE).signatures
    monkeypatch.setenv("LOCKGATE_GATE_SIGN_KEY", write_test_key(tmp_path).read_text())  # CI: the PEM text
    assert main([str(bundle), "--policy", str(policy), "--quiet"]) == 0
    assert read_envelope(bundle / GATE_FILE).signatures[0].keyid == key_id(TEST_KEY)
    (tmp_path / "junk").write_text("not a key")
    assert main([str(bundle), "--sign-key", str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err
    assert "--sign-key" in err and "PEM" in err and "Traceback" not in err


def test_help_says_which_isolation_is_available(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "sandbox isolation on this machine:" in out and Isolation.detect().description in out


class ReturnsNone:
    name = "returns.none"
    requires: tuple[str, ...] = ()
    description = "a broken check"

    def run(self, ctx, policy):
        return None


class WrongName:
    name = "wrong.name"
    requires: tuple[str, ...] = ()
    description = "returns another check's result"

    def run(self, ctx, policy):
        return outcome("something.else", "pass")


def test_a_check_returning_none_is_an_error_not_a_crash(good_bundle: Path) -> None:
    report = run_gate(good_bundle, GatePolicy(), checks=[ReturnsNone(), WrongName()], write=False)
    assert statuses(report) == {"returns.none": "error", "wrong.name": "error"} and not report.passed
    assert "instead of its CheckResult" in check(report, "returns.none").message


def test_a_card_nested_50000_deep_fails_cleanly(variant, fast_policy, capsys) -> None:
    bundle = variant()
    (bundle / CARD_FILE).write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    assert main([str(bundle), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = run_gate(bundle, fast_policy, write=False)
    assert check(report, "card.schema").status == "fail"
    assert "nested more than 64 levels" in check(report, "card.schema").message


def test_links_to_dev_zero_fail_cleanly(variant, fast_policy) -> None:
    bundle = variant()
    (bundle / CARD_FILE).unlink()
    (bundle / GATE_FILE).unlink(missing_ok=True)
    os.symlink("/dev/zero", bundle / CARD_FILE)
    os.symlink("/dev/zero", bundle / GATE_FILE)
    report = run_gate(bundle, fast_policy)
    assert (
        check(report, "card.schema").status == "fail"
        and "symbolic link" in check(report, "card.schema").message
    )
    assert (bundle / GATE_FILE).is_file() and not (bundle / GATE_FILE).is_symlink()  # replaced, not followed
    assert check(report, "bundle.files").status == "fail"  # the link in the bundle is named


def _one_row_reference(bundle: Path) -> None:
    """One held-out row, labelled with the model's own answer: f1 1.0 on main, whatever the model."""
    with np.load(bundle / "reference.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    row = arrays["holdout_inputs"][:1]
    label = session.run(["label"], {session.get_inputs()[0].name: row})[0]
    arrays.update(holdout_inputs=row, holdout_labels=label.astype(np.int64))
    arrays.pop("holdout_segments", None)
    np.savez(bundle / "reference.npz", **arrays)


def test_one_held_out_row_is_not_evidence(variant, fast_policy, gate) -> None:
    bundle = variant()
    _one_row_reference(bundle)
    report = gate(bundle, fast_policy, "quality")
    quality = check(report, "quality")
    assert quality.status == "fail" and "only 1 held-out rows" in quality.message
    assert quality.value["rows"] == 1


def test_the_gate_scores_its_own_holdout_file(
    variant, good_bundle: Path, fast_policy, tmp_path: Path
) -> None:
    bundle = variant()
    _one_row_reference(bundle)
    with np.load(good_bundle / "reference.npz") as npz:
        holdout = tmp_path / "holdout.npz"
        np.savez(holdout, holdout_inputs=npz["holdout_inputs"], holdout_labels=npz["holdout_labels"])
        rows = len(npz["holdout_labels"])
    report = run_gate(bundle, fast_policy, holdout=holdout, sign_key=TEST_KEY)
    quality = check(report, "quality")
    assert quality.status == "pass" and quality.value["rows"] == rows and "--holdout" in quality.message
    statement, _ = open_envelope(read_envelope(bundle / GATE_FILE), {key_id(TEST_KEY): TEST_KEY.public_key()})
    assert statement.predicate.holdout_sha256 is not None
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, inputs=np.zeros((3, 2)))
    assert check(run_gate(bundle, fast_policy, holdout=wrong, write=False), "quality").status == "fail"


@pytest.mark.parametrize("level", ["bwrap", "unshare"])
def test_the_worker_has_no_network_and_a_read_only_bundle(tmp_path: Path, level: str) -> None:
    isolation = Isolation.of(level)  # ValueError (a failure) when the machine cannot give it
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('net')\n"
            "except OSError: pass\n"
            "try:\n"
            f"    open({str(bundle / 'x')!r}, 'w'); print('wrote')\n"
            "except OSError: pass\n"
            f"open({str(scratch / 'ok')!r}, 'w').write('scratch is writable')\n"
        )
        argv = isolation.wrap([sys.executable, "-I", "-c", probe], scratch, bundle)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "net" not in done.stdout and "wrote" not in done.stdout
    assert (scratch / "ok").read_text() == "scratch is writable" and not (bundle / "x").exists()


def test_the_gate_does_not_trust_the_workers_output_paths(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.npy"
    np.save(secret, np.zeros(3))
    run = SandboxRun(
        events=[], exit_code=0, killed_by=None, wall_seconds=0, cpu_seconds=0, maxrss_mb=0, stderr=""
    )
    event = {"event": "done", "id": "parity", "files": {"label": str(secret)}}
    assert "outside its scratch directory" in _read_outputs(event, tmp_path / "scratch", {"parity"}, run)
    assert "did not send" in _read_outputs(dict(event, id="other"), tmp_path, {"parity"}, run)
    assert run.outputs == {}


def test_the_canary_server_waits_for_every_sandboxed_check(variant, shape, fast_policy) -> None:
    bundle = variant(finish(linear_graph(*shape, naive_softmax=True)))
    report = run_gate(bundle, fast_policy, serve=True, write=False)
    assert check(report, "inputs").status == "fail"
    assert check(report, "serve").status == "skip" and "inputs" in check(report, "serve").message


def _external_in(model: onnx.ModelProto, tensor: onnx.TensorProto) -> onnx.ModelProto:
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/shadow"
    return model


def test_external_data_in_sparse_attributes_and_training_info_is_found(variant, shape, fast_policy) -> None:
    sparse = finish(linear_graph(*shape))
    values = onnx.helper.make_tensor("sv", onnx.TensorProto.FLOAT, [1], [0.0])
    indices = onnx.helper.make_tensor("si", onnx.TensorProto.INT64, [1], [0])
    node = onnx.helper.make_node(
        "Constant", [], ["unused"], sparse_value=onnx.helper.make_sparse_tensor(values, indices, [4])
    )
    sparse.graph.node.insert(0, node)
    _external_in(sparse, sparse.graph.node[0].attribute[0].sparse_tensor.values)
    training = finish(linear_graph(*shape))
    info = training.training_info.add()
    info.initialization.name = "init"
    init = info.initialization.initializer.add()
    init.CopyFrom(onnx.helper.make_tensor("hidden", onnx.TensorProto.FLOAT, [1], [0.0]))
    _external_in(training, init)
    for model, name in ((sparse, "sv"), (training, "hidden")):
        report = run_gate(variant(model), fast_policy, write=False)
        assert check(report, "file.external_data").status == "fail", report.checks
        assert name in check(report, "file.external_data").message
        assert check(report, "load").status == "skip"  # nothing was opened or run


def test_the_whole_gate_runs_under_each_isolation(variant, fast_policy) -> None:
    bundle = variant()
    for level in ("bwrap", "unshare", "none"):
        report = run_gate(bundle, fast_policy, isolation=Isolation.of(level), write=False)
        assert report.passed, (level, [(c.name, c.message) for c in report.checks if c.status != "pass"])
