"""`lockgate demo` end to end (without the final foreground server): train, gate, register, release, and
the two-model cascade (risk -> credit)."""

from pathlib import Path

from cascade_registry import Registry
from cascade_registry.artifacts import ModelBundle
from lockgate.cli import main
from tests.bundles import read_gate


def test_demo_releases_a_gated_model_and_a_cascade_with_one_declared_consumer(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--no-serve", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "curl" in printed
    assert "risk:1 (probabilities)" in printed and "share of error" in printed  # the attribution table

    bundle = ModelBundle.load(out / "demo-1")
    gate = read_gate(out / "demo-1")
    assert gate.binds(bundle.onnx_sha256)

    keys = dict(line.split() for line in (out / "keys.txt").read_text().splitlines())
    with Registry.open(f"sqlite:///{out / 'registry.db'}") as reg:
        assert sorted(str(v.ref) for v in reg.released()) == ["credit:1", "demo:1", "risk:1"]
        assert reg.check_access(keys["demo-app"], "demo").allowed
        assert reg.check_access(keys["demo-app"], "credit").allowed
        assert [(u.name, u.version) for u in reg.get("credit:1").card.upstream] == [("risk", 1)]
        assert ("credit", 1, "risk", 1) in reg.cascade().pins
        refused = reg.check_access(keys["other-app"], "demo")
        assert not refused.allowed and refused.reason == "undeclared"


def test_top_level_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for sub in ("train", "check", "registry", "serve", "loadtest", "demo"):
        assert f"  {sub}" in text


def test_unknown_subcommand_is_a_usage_error(capsys):
    assert main(["trian"]) == 2
    assert "unknown subcommand 'trian'" in capsys.readouterr().err
