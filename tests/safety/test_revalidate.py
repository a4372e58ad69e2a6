"""``lockgate registry revalidate``: the cascade of :func:`tests.cascades.build_cascade` (``a``, gradient
boosting on g1..g4 and the categorical region; ``b`` trained with ``lockgate train --upstream a:1``, through
the real gate) re-scored through the gate's quality checks on SQLite and PostgreSQL. A compatible ``a:2``
(a rebuild with the same options: another model file, the same outputs) moves the pin with signed
evidence; ``a:3``, trained on the opposite
target, is refused saying by how much; nothing moves without a key."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cascade_registry.artifacts import ModelBundle
from lockgate.cli import main
from tests.bundles import gate_bundle, open_trusting, write_attestation, write_test_key
from tests.cascade_registry.conftest import pg_server, pg_url  # noqa: F401 - fixtures for the PG run
from tests.cascades import FAST, build_cascade
from training.cli import main as train_main
from training.upstream import effective_pins


def _train_a(out: Path, data: Path, version: int, *options: str) -> Path:
    argv = ["--data", str(data), "--target", "risky", "--name", "a", "--version", str(version)]
    assert train_main([*argv, "--model", "hist_gradient_boosting", *FAST, *options, "--out", str(out)]) == 0
    bundle = out / f"a-{version}"
    write_attestation(bundle, ModelBundle.read_card(bundle).ref)
    return bundle


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cascade")
    c = build_cascade(root)
    gate_bundle(c.bundle("b"))  # b:1's verdict from the real gate: its metrics are the 'before'
    flipped = root / "a-flipped.csv"
    table = pd.read_csv(c.tables["a"])
    table.assign(risky=table["risky"].map({"yes": "no", "no": "yes"})).to_csv(flipped, index=False)
    out = root / "out"
    return {
        "a:1": c.bundle("a"),
        "b:1": c.bundle("b"),
        "a:2": _train_a(out, c.tables["a"], 2),  # a rebuild: another file, the same outputs
        "a:3": _train_a(out, flipped, 3),
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("pg_url")


def _world(url: str, cascade: dict[str, Path]):
    """a:1 -> b:1 released (b owned by team-b); a:2 released (b:1 stays on a:1); a:3 registered only."""
    reg = open_trusting(url)
    reg.register(cascade["a:1"], owner="team-a")
    reg.register(cascade["b:1"], owner="team-b")
    reg.release_many(["b:1", "a:1"])
    reg.register(cascade["a:2"])
    reg.release("a:2")
    reg.register(cascade["a:3"])
    return reg


def _revalidate(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["registry", "revalidate", *argv, "--registry-url", url])
    out, err = capsys.readouterr()
    return code, out, err


def test_revalidate_moves_the_pin_with_signed_evidence(
    cascade: dict[str, Path], url: str, tmp_path: Path, capsys
) -> None:
    key = str(write_test_key(tmp_path))
    with _world(url, cascade) as reg:
        assert reg.get("b:1").stale and [str(p.upstream) for p in reg.pins("b:1")] == ["a:1"]
        code, _, err = _revalidate(capsys, url, "b:1", "--upstream", "a:2")
        assert code == 2 and "needs signed evidence" in err and err.count("\n") == 1
        code, out, _ = _revalidate(capsys, url, "b:1", "--upstream", "a:2", "--sign-key", key, "--json")
        result = json.loads(out)
        assert code == 0 and result["passed"], result["problems"]
        assert result["pin"]["upstream"] == {"name": "a", "version": 2}
        (pin,) = reg.pins("b:1")
        assert (pin.source, pin.card_version, pin.evidence["previous"]) == ("revalidated", 1, "a:1")
        before, after = pin.evidence["before"], pin.evidence["after"]
        assert abs(before["f1_macro"] - after["f1_macro"]) <= 0.02 and {"ece", "brier"} <= after.keys()
        plan = {str(e.info.ref): (e.role, e.pins) for e in reg.serving_plan()}
        assert plan == {"a:2": ("release", {}), "b:1": ("release", {"a": 2})}
        assert not reg.get("b:1").stale and reg.check_consumer("b", "a", 2).allowed
        card_b = ModelBundle.read_card(cascade["b:1"])
        assert effective_pins(card_b, url) == {"a": 2}  # what analyze --upstream-truth runs as deployed
    assert effective_pins(card_b, f"sqlite:///{tmp_path / 'other.db'}") == {"a": 1}  # no registry: the card


def test_an_incompatible_upstream_is_refused_saying_by_how_much(
    cascade: dict[str, Path], tmp_path: Path, capsys
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with _world(url, cascade) as reg:
        code, out, _ = _revalidate(capsys, url, "b:1", "--upstream", "a:3", "--dry-run")
        assert code == 1 and "FAIL: " in out and "below" in out and "with a:1" in out, out
        assert reg.pins("b:1")[0].source == "card"
        code, _, err = _revalidate(capsys, url, "a:1", "--upstream", "b:1", "--dry-run")
        assert code == 1 and "a:1 was not trained on b" in err and err.count("\n") == 1


def test_registry_help_lists_revalidate(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["registry", "--help"])
    assert "revalidate" in capsys.readouterr().out
    assert main(["registry", "revalidate", "--help"]) == 0
    assert "--upstream" in capsys.readouterr().out
