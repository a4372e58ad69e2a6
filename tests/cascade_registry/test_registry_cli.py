"""``lockgate registry``: the commands end to end, tables and --json, and bad input as one line on stderr
with a non-zero exit and nothing written."""

from __future__ import annotations

import json
import shutil

import pytest

from cascade_registry import Registry
from cascade_registry.cli import main


@pytest.fixture
def run(registry_url: str, capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--url", registry_url, "--actor", "tester", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_whole_flow(run, make_bundle, registry_url: str) -> None:
    a, b = make_bundle("a", 1), make_bundle("b", 1, upstream=["a:1"])
    assert run("register", str(a))[0] == 0
    code, out, _ = run("register", str(b), "--json")
    assert code == 0 and json.loads(out)["ref"] == {"name": "b", "version": 1}
    assert run("consumer", "add", "web", "--owner", "team-web")[0] == 0
    code, key, err = run("key", "issue", "web")
    assert code == 0 and key.startswith("lg_") and "shown once" in err
    assert run("declare", "web", "b", "--versions", ">=1")[0] == 0
    for ref in ("a:1", "b:1"):
        assert run("release", ref)[0] == 0
    code, out, _ = run("list")
    assert (
        code == 0 and "released" in out and out.splitlines()[0].split()[:3] == ["model", "version", "status"]
    )
    code, out, _ = run("show", "a:1")
    assert (
        code == 0
        and out.startswith("a:1  [released]")
        and "gated_passed -> released" in " ".join(out.split())
    )
    code, out, _ = run("show", "a")
    assert code == 0 and "card of b:1" in out
    code, out, _ = run("impact", "a", "--json")
    assert [e["consumer"] for e in json.loads(out)["entries"]] == ["b", "web"]
    code, out, _ = run("graph")
    assert code == 0 and out.startswith("graph LR") and 'n_a -->|"v1 on v1"| n_b' in out
    code, out, _ = run("graph", "--format", "dot")
    assert code == 0 and out.startswith("digraph cascade") and "n_b -> n_web" in out
    code, out, _ = run("audit", "--json")
    entries = json.loads(out)
    assert code == 0 and {e["actor"] for e in entries if e["action"] != "trust.add"} == {"tester"}
    assert key.strip() not in out
    run("key", "rotate", "web")
    code, out, _ = run("key", "list", "web")
    assert code == 0 and len(out.strip().splitlines()) == 4
    with Registry.open(registry_url) as reg:
        assert reg.check_access(key.strip(), "b").reason == "revoked_key"


def test_graph_png_where_graphviz_is_installed(run, make_bundle, tmp_path) -> None:
    run("register", str(make_bundle("a", 1)))
    code, _, err = run("graph", "--png", str(tmp_path / "g.png"))
    if shutil.which("dot") is None:
        assert code == 2 and "Graphviz 'dot' is not installed" in err and not (tmp_path / "g.png").exists()
    else:
        assert code == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_waiver_from_the_command_line(run, make_bundle) -> None:
    run("register", str(make_bundle("a", 1)))
    run("register", str(make_bundle("b", 1, upstream=["a:1"])), "--owner", "team-b")
    assert run("release", "b:1", "a:1")[1].strip() == "released a:1, b:1"
    run("register", str(make_bundle("a", 2)))
    assert run("release", "a:2")[0] == 0  # b:1 stays on a:1
    run("register", str(make_bundle("b", 2, upstream=["a:1"])))  # trained on the old upstream: stale
    code, _, err = run("release", "b:2")
    assert code == 1 and err.count("\n") == 1 and "b:2 is stale" in err and "--waive" in err
    code, _, err = run("release", "b:2", "--waive", "approved by risk team", "--owner", "mallory")
    assert code == 1 and "b is owned by team-b" in err
    assert run("release", "b:2", "--waive", "approved by risk team", "--owner", "team-b")[0] == 0
    code, out, _ = run("impact", "b")
    assert "approved by risk team" in out and "team-b" in out
    code, out, _ = run("pins", "b:1")
    assert code == 0 and "card" in out and out.splitlines()[2].split()[:3] == ["b:1", "a", "1"]


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["show", "nope"], 1, "no model named 'nope'"),
        (["show", "a:9"], 1, "has no version 9"),
        (["release", "a"], 2, "not a valid NAME:VERSION"),
        (["release", "a:2"], 1, "no readable gate report"),
        (["declare", "ghost", "a"], 1, "no consumer named 'ghost'"),
        (["consumer", "add", "Bad Name", "--owner", "o"], 2, "malformed"),
        (["key", "issue", "ghost"], 1, "no consumer named 'ghost'"),
        (["register", "/definitely/not/here"], 1, "is not a directory"),
        (["release", "a:1", "--waive", ""], 2, "waiver reason must be a non-empty text"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(run, make_bundle, registry_url, argv, code, needle) -> None:
    run("register", str(make_bundle("a", 1)))
    run("register", str(make_bundle("a", 2, gate=None)))
    with Registry.open(registry_url) as reg:
        before = reg.generation()
    if argv == ["frobnicate"]:
        with pytest.raises(SystemExit) as exc:
            run(*argv)
        assert exc.value.code == code
        return
    got, out, err = run(*argv)
    assert got == code and needle in err and err.count("\n") == 1 and "Traceback" not in err
    with Registry.open(registry_url) as reg:
        assert reg.generation() == before


def test_duplicate_sha_is_refused(run, make_bundle) -> None:
    bundle = make_bundle("a", 1)
    assert run("register", str(bundle))[0] == 0
    code, _, err = run("register", str(bundle))
    assert code == 1 and "already registered as a:1" in err


def test_unreachable_database(capsys) -> None:
    code = main(["--url", "postgresql+psycopg://postgres@127.0.0.1:1/test", "list"])
    err = capsys.readouterr().err
    assert code == 3 and "cannot reach the registry database" in err and err.count("\n") == 1
