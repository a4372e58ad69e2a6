"""``lockgate registry revalidate``: a real cascade (random-forest upstream, logistic scorer on its ONNX
outputs) re-scored through the gate's quality checks on SQLite and PostgreSQL; a compatible upstream moves
the pin with signed evidence, an incompatible one is refused saying by how much, and nothing moves without
a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.cli import main
from tests.bundles import open_trusting, write_test_key
from tests.cascade_registry.conftest import pg_server, pg_url  # noqa: F401 - fixtures for the PG run
from tests.cascades import train_scorer, train_upstream


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cascade")
    up1 = train_upstream(root, 1, seed=0)
    return {
        "up:1": up1,
        "up:2": train_upstream(root, 2, seed=1),
        "up:3": train_upstream(root, 3, seed=0, opposite=True),
        "scorer:1": train_scorer(root, up1),
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("pg_url")


def _revalidate(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["registry", "revalidate", *argv, "--registry-url", url])
    out, err = capsys.readouterr()
    return code, out, err


def _world(url: str, cascade: dict[str, Path]):
    """up:1 -> scorer:1 released; up:2 released with the scorer owner's waiver; up:3 registered only."""
    reg = open_trusting(url)
    reg.register(cascade["up:1"], owner="team-up")
    reg.register(cascade["scorer:1"], owner="team-scorer")
    reg.release_many(["scorer:1", "up:1"])
    reg.register(cascade["up:2"])
    reg.release("up:2", waiver="scorer revalidates today", owner="team-scorer")
    reg.register(cascade["up:3"])
    return reg


def test_revalidate_moves_the_pin_with_signed_evidence(
    cascade: dict[str, Path], url: str, tmp_path: Path, capsys
) -> None:
    key = str(write_test_key(tmp_path))
    with _world(url, cascade) as reg:
        code, _, err = _revalidate(capsys, url, "scorer:1", "--upstream", "up:2")
        assert code == 2 and "needs signed evidence" in err and err.count("\n") == 1
        code, out, _ = _revalidate(capsys, url, "scorer:1", "--upstream", "up:2", "--sign-key", key, "--json")
        result = json.loads(out)
        assert code == 0 and result["passed"] and result["pin"]["upstream"] == {"name": "up", "version": 2}
        (pin,) = reg.pins("scorer:1")
        assert (pin.source, pin.card_version, pin.evidence["previous"]) == ("revalidated", 1, "up:1")
        before, after = pin.evidence["before"], pin.evidence["after"]
        assert abs(before["f1_macro"] - after["f1_macro"]) <= 0.02 and {"ece", "brier"} <= after.keys()
        plan = {str(e.info.ref): (e.role, e.pins) for e in reg.serving_plan()}
        assert plan == {"scorer:1": ("release", {"up": 2}), "up:2": ("release", {})}
        assert not reg.get("scorer:1").stale


def test_an_incompatible_upstream_is_refused_saying_by_how_much(
    cascade: dict[str, Path], tmp_path: Path, capsys
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with _world(url, cascade) as reg:
        code, out, _ = _revalidate(capsys, url, "scorer:1", "--upstream", "up:3", "--dry-run")
        assert code == 1 and "FAIL: " in out and "below" in out and "with up:1" in out, out
        assert reg.pins("scorer:1")[0].source == "card"
        code, _, err = _revalidate(capsys, url, "up:1", "--upstream", "scorer:1", "--dry-run")
        assert code == 1 and "up:1 was not trained on scorer" in err and err.count("\n") == 1


def test_registry_help_lists_revalidate(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["registry", "--help"])
    assert "revalidate" in capsys.readouterr().out
    assert main(["registry", "revalidate", "--help"]) == 0
    assert "--upstream" in capsys.readouterr().out
