"""The trust chain on the registry side (issue 12, findings 1, 2, 4 and 9): only a verdict signed by a
trusted key, made under at least the minimum policy with every default check, over exactly the bundle's
files, gets a version gated and released. Each test here fails on the registry before signing existed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cascade_registry import BundleRejectedError, GateError, Registry
from cascade_registry.artifacts import (
    CARD_FILE,
    GATE_FILE,
    GateReport,
    ModelRef,
    write_json_atomic,
)
from cascade_registry.attestation import generate_private_key, public_key_pem
from cascade_registry.cli import main as registry_main
from cascade_registry.engine import _MIGRATIONS, _head_revision
from cascade_registry.gate_policy import GatePolicy
from tests.bundles import TEST_PUBLIC_PEM, write_attestation

A1 = ModelRef(name="a", version=1)


def _refused(registry: Registry, match: str) -> None:
    with pytest.raises(GateError, match=match):
        registry.record_gate("a:1")
    with pytest.raises(GateError, match=match):
        registry.release("a:1")
    assert registry.get("a:1").status != "released"


def test_a_hand_written_gate_json_releases_nothing(registry: Registry, make_bundle) -> None:
    """Finding 1: the old attack, an unsigned report claiming passed with no checks."""
    bundle = make_bundle("a", 1, gate=None)
    sha = registry.register(bundle).onnx_sha256
    forged = GateReport(ref=A1, onnx_sha256=sha, passed=True, checks=[], created_at=datetime.now(UTC))
    write_json_atomic(bundle / GATE_FILE, forged)
    _refused(registry, "cannot be trusted.*not a signed gate report")
    write_attestation(bundle, A1, key=None)  # the right shape, but unsigned
    _refused(registry, "is not signed")


def test_a_verdict_signed_by_an_unknown_key_is_refused(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate=None)
    write_attestation(bundle, A1, key=generate_private_key())
    assert registry.register(bundle).status == "registered"
    _refused(registry, "signed by unknown key")


def test_an_altered_verdict_does_not_verify(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate="fail")
    assert registry.register(bundle).status == "gated_failed"
    envelope = json.loads((bundle / GATE_FILE).read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["passed"] = True
    statement["predicate"]["checks"] = [dict(c, status="pass") for c in statement["predicate"]["checks"]]
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (bundle / GATE_FILE).write_text(json.dumps(envelope))
    _refused(registry, "does not verify")


def test_a_tampered_card_is_refused_before_and_after_registration(registry: Registry, make_bundle) -> None:
    """Finding 2: the card is bound to the verdict. Reversed classes after the gate are refused."""
    before, after = make_bundle("a", 1), make_bundle("b", 1)
    for bundle in (before, after):
        card = json.loads((bundle / CARD_FILE).read_text())
        card["classes"] = card["classes"][::-1]
        card["input_policy"] = dict(card["input_policy"], reject_nonfinite=False)
        if bundle is after:
            assert registry.register(bundle).status == "gated_passed"
        (bundle / CARD_FILE).write_text(json.dumps(card))
    assert registry.register(before).status == "registered"  # the verdict does not cover these files
    _refused(registry, "not the ones the gate checked: card.json changed")
    for call in (registry.record_gate, registry.release):
        with pytest.raises(GateError, match="card.json changed"):
            call("b:1")


def test_every_file_of_the_bundle_is_bound(registry: Registry, make_bundle) -> None:
    """External data and any other file count: one added after the gate is refused."""
    bundle = make_bundle("a", 1)
    registry.register(bundle)
    (bundle / "weights.bin").write_bytes(b"\0" * 64)
    _refused(registry, "weights.bin was added")


def test_files_changed_since_registration_are_refused(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate=None)
    registry.register(bundle)
    (bundle / "notes.txt").write_text("added after register")
    write_attestation(bundle, A1)  # a fresh, honest verdict over the new files
    _refused(registry, "changed since it was registered: notes.txt was added")


def test_a_loose_policy_is_refused(registry: Registry, make_bundle) -> None:
    """Finding 1b: metric floor 0 and custom domains allowed."""
    bundle = make_bundle("a", 1, gate=None)
    loose = GatePolicy().with_changes(quality={"min_metric": 0.0}, file={"allowed_domains": ["", "com.evil"]})
    write_attestation(bundle, A1, policy=loose.model_dump(mode="json"))
    assert registry.register(bundle).status == "registered"
    _refused(registry, r"weaker than the registry's minimum: file.allowed_domains .*quality.min_metric = 0.0")


def test_a_missing_limit_or_check_is_refused(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate=None)
    registry.register(bundle)
    policy = GatePolicy().model_dump(mode="json")
    del policy["quality"]["max_ece"]
    write_attestation(bundle, A1, policy=policy)
    _refused(registry, "quality.max_ece is missing")
    write_attestation(bundle, A1, checks=["file.size", "card.schema"])
    _refused(registry, "lacks the default checks file.sha256, file.parse")


def test_the_minimum_policy_can_be_raised(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1)
    registry.set_min_policy(GatePolicy().with_changes(quality={"min_metric": 0.9}), actor="risk")
    assert registry.register(bundle).status == "registered"
    _refused(registry, r"quality.min_metric = 0.6 is weaker than the minimum 0.9")
    registry.set_min_policy(GatePolicy(), actor="risk")
    assert registry.release("a:1").status == "released"


def test_a_removed_key_is_no_longer_trusted(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1)
    [key] = [k for k in registry.trusted_keys() if k.public_key == TEST_PUBLIC_PEM]
    registry.distrust_key(key.key_id)
    assert registry.register(bundle).status == "registered"
    _refused(registry, "signed by unknown key")


def test_a_verdict_for_another_model_is_refused(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate=None)
    registry.register(bundle)
    write_attestation(bundle, ModelRef(name="a", version=2))
    _refused(registry, "is for a:2, not a:1")


def test_the_manifest_and_card_are_stored_at_register_time(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1)
    info = registry.register(bundle)
    assert info.manifest is not None and {f.path for f in info.manifest.files} == {"card.json", "model.onnx"}
    assert info.gate_key_id is not None and info.card.ref == A1
    assert registry.get("a:1").manifest == info.manifest


def test_a_deeply_nested_card_is_refused_cleanly(registry: Registry, make_bundle) -> None:
    """Finding 4: a card nested 50,000 deep is a clear refusal, not a RecursionError."""
    bundle = make_bundle("a", 1, gate=None)
    (bundle / CARD_FILE).write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(BundleRejectedError, match="nested more than 64 levels"):
        registry.register(bundle)


def test_a_gate_json_linked_to_dev_zero_is_refused_cleanly(registry: Registry, make_bundle) -> None:
    """Finding 4: register does not read /dev/zero forever; gate and release name the problem."""
    bundle = make_bundle("a", 1, gate=None)
    os.symlink("/dev/zero", bundle / GATE_FILE)
    assert registry.register(bundle).status == "registered"
    _refused(registry, "symbolic link")
    linked = make_bundle("b", 1, gate=None)
    (linked / CARD_FILE).unlink()
    os.symlink("/dev/zero", linked / CARD_FILE)
    with pytest.raises(BundleRejectedError, match="card.json is a symbolic link"):
        registry.register(linked)


def test_register_on_hostile_cards_exits_cleanly(make_bundle, registry_url: str, tmp_path: Path) -> None:
    """The CLI says what is wrong in one line, exit 1, no traceback."""
    nested = make_bundle("a", 1, gate=None)
    (nested / CARD_FILE).write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    linked = make_bundle("b", 1, gate=None)
    (linked / CARD_FILE).unlink()
    os.symlink("/dev/zero", linked / CARD_FILE)
    for bundle in (nested, linked):
        done = subprocess.run(
            [sys.executable, "-m", "lockgate.cli", "registry", "--url", registry_url]
            + ["register", str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "card.json" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_trust_cli(registry_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lockgate registry trust`` and ``policy`` in-process (the entry point as a real process is
    ``test_register_on_hostile_cards_exits_cleanly`` above and tests/test_cli.py)."""
    key = generate_private_key()
    pub = tmp_path / "k.pub"
    pub.write_text(public_key_pem(key))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = registry_main(["--url", registry_url, *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    added = run("trust", "add", str(pub), "--label", "ci-gate", "--json")
    assert added.returncode == 0, added.stderr
    kid = json.loads(added.stdout)["key_id"]
    listed = run("trust", "list")
    assert kid in listed.stdout and "ci-gate" in listed.stdout
    assert run("trust", "add", str(pub), "--label", "again").returncode == 1
    (tmp_path / "bad.pub").write_text("not a key")
    bad = run("trust", "add", str(tmp_path / "bad.pub"), "--label", "x")
    assert bad.returncode == 2 and "PEM public key" in bad.stderr
    assert run("trust", "remove", kid).returncode == 0 and kid not in run("trust", "list").stdout
    (tmp_path / "strict.toml").write_text("[quality]\nmin_metric = 0.8\n")
    assert run("policy", "set", str(tmp_path / "strict.toml")).returncode == 0
    assert json.loads(run("policy", "show", "--json").stdout)["quality"]["min_metric"] == 0.8


def test_audit_subject_is_literal(registry: Registry, make_bundle) -> None:
    """Finding 9: '_' and '%' in --subject are not LIKE wildcards."""
    registry.register(make_bundle("a_b", 1))
    registry.register(make_bundle("axb", 1))
    assert {e.subject for e in registry.audit(subject="a_b")} == {"a_b:1"}
    assert registry.audit(subject="a%") == []


@pytest.mark.postgres
def test_truncate_cannot_empty_the_audit_log(pg_url: str) -> None:
    """Finding 9: row triggers do not fire on TRUNCATE; the statement-level trigger does."""
    with Registry.open(pg_url) as registry:
        registry.add_consumer("web", owner="o")
        engine = registry.store.db.engine
        with pytest.raises(DBAPIError, match="append-only"), engine.connect() as conn, conn.begin():
            conn.execute(text("TRUNCATE audit_log"))
        assert [e.subject for e in registry.audit()] == ["web"]


def test_a_verified_failing_verdict_is_recorded_but_not_released(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1, gate=None)
    registry.register(bundle)
    write_attestation(bundle, A1, passed=False)
    assert registry.record_gate("a:1").status == "gated_failed"
    with pytest.raises(GateError, match=r"failed the safety gate \(quality\)"):
        registry.release("a:1")


def test_migration_0002_upgrades_a_registry_with_data(fresh_registry_url: str, make_bundle) -> None:
    """0001 -> 0002 on both backends: old versions keep their rows (no manifest: they must be gated
    against the files as they are), the new tables and the TRUNCATE trigger appear."""
    with Registry.open(fresh_registry_url) as registry:
        registry.register(make_bundle("a", 1, gate=None))
        with registry.store.db.engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
    with Registry.open(fresh_registry_url) as registry:  # migrated back to head on open
        info = registry.get("a:1")
        assert info.status == "registered" and info.manifest is None and registry.trusted_keys() == []
        with registry.store.db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head_revision()
