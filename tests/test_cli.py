"""The ``lockgate`` dispatcher and what every subcommand shares: usage without arguments (exit 2), one
registry option and variable, help text on every option, ``--help`` that imports no heavy library, and a
closed pipe that is not an error."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockgate.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "onnxruntime", "onnx", "bentoml", "sqlalchemy", "pandas", "matplotlib")
#: modules with a ``build_parser()``: every public subcommand but the demo
PARSERS = [module for name, (module, _) in SUBCOMMANDS.items() if name != "demo"]


def lockgate(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lockgate.cli", *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _actions(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.Action]]:
    """Every action of ``parser`` and of its subcommands, with the command path that owns it."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _actions(sub, f"{path} {name}".strip())
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_no_arguments_prints_usage_and_exits_2(tmp_path: Path) -> None:
    done = lockgate(cwd=tmp_path, env={"LOCKGATE_REGISTRY_URL": ""})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: lockgate <subcommand>") and "train" in done.stderr
    # the location rule, and where the registry would be here
    assert "--registry-url URL, else $LOCKGATE_REGISTRY_URL, else ./.lockgate/registry.db" in done.stderr
    assert f"{tmp_path.resolve() / '.lockgate' / 'registry.db'}" in done.stderr
    assert "not created yet" in done.stderr and not (tmp_path / ".lockgate").exists()


def test_help_names_the_registry_in_use(tmp_path: Path) -> None:
    done = lockgate("--help", cwd=tmp_path, env={"LOCKGATE_REGISTRY_URL": "team/reg.db"})
    assert done.returncode == 0
    assert f"{tmp_path.resolve() / 'team' / 'reg.db'} (from $LOCKGATE_REGISTRY_URL)" in done.stdout


@pytest.mark.parametrize("module", PARSERS)
def test_every_option_has_help_text(module: str) -> None:
    parser = importlib.import_module(module).build_parser()
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}".strip()
        for path, a in _actions(parser)
        if not a.help  # argparse.SUPPRESS marks deprecated spellings, hidden on purpose
    ]
    assert missing == []


@pytest.mark.parametrize("module", PARSERS)
def test_one_registry_option_and_one_variable(module: str) -> None:
    parser = importlib.import_module(module).build_parser()
    options = {
        opt: action
        for _, action in _actions(parser)
        for opt in action.option_strings
        if "url" in opt
    }
    for opt, action in options.items():
        if action.help == argparse.SUPPRESS:
            continue  # the deprecated 'registry --url' alias, hidden
        assert opt == "--registry-url", f"{module}: {opt}"
        assert "LOCKGATE_REGISTRY_URL" in action.help


def test_json_output_is_one_convention() -> None:
    """``--json`` is a flag printing JSON to stdout; a file is always ``--json-out FILE``."""
    for module in PARSERS:
        for _, action in _actions(importlib.import_module(module).build_parser()):
            if "--json" in action.option_strings:
                assert action.nargs == 0, f"{module}: --json takes no value"
            if "--json-out" in action.option_strings:
                assert action.metavar == "FILE"
            assert "--json-only" not in action.option_strings or action.help == argparse.SUPPRESS


@pytest.mark.parametrize("argv", [[name] for name in SUBCOMMANDS] + [["registry", "list"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    """``--help`` stays fast because no subcommand imports torch, scikit-learn, ONNX Runtime, BentoML or
    SQLAlchemy for it (the time itself is printed by benchmarks/cli_help.py)."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from lockgate.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        code = main({[*argv, '--help']!r})\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        f"print(json.dumps({{'code': code, 'help': out.getvalue(), 'heavy': [m for m in {HEAVY!r} "
        "if m in sys.modules]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and result["help"].startswith("usage:")
    assert result["heavy"] == []


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """``lockgate registry list --json | head -1``: the reader leaving early is exit 0, no message."""
    from cascade_registry import Registry

    url = str(tmp_path / "reg.db")
    with Registry.open(url) as reg:
        reg.add_consumer("web", owner="team-web")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lockgate.cli", "registry", "consumer", "list", "--json"]
            + ["--registry-url", url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("500ms", 0.5), ("3s", 3.0), ("2m", 120.0), ("1h30m", 5400.0), ("1m30", 90.0), (2, 2.0),
     ("30d", 2592000.0), ("1d12h", 129600.0)],
)
def test_one_duration_syntax(text: str | int, seconds: float) -> None:
    from cascade_registry.durations import parse_duration

    assert parse_duration(text) == seconds


def test_durations_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade_registry.durations import parse_duration
    from loadtests.cli import _settings
    from loadtests.cli import build_parser as loadtest_parser
    from serving.cli import build_parser as serve_parser

    for bad in ("soon", "3x", "ms", "", "30s1m", "1m1m"):
        with pytest.raises(ValueError, match="not like 90, 30s, 500ms"):
            parse_duration(bad)
    args = loadtest_parser().parse_args(["--traffic", "t.toml", "--ready-timeout", "3s", "--warmup", "500ms"])
    settings = _settings(args)
    assert (settings.ready_timeout, settings.warmup) == (3.0, 0.5)
    serve = serve_parser().parse_args(["--timeout", "10s", "--poll-interval", "250ms"])
    assert (serve.timeout, serve.poll_interval) == (10.0, 0.25)
    done = lockgate("serve", "--timeout", "3x")
    assert done.returncode == 2 and "--timeout: duration '3x' is not like" in done.stderr


def test_one_registry_variable_for_serve_and_loadtest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from loadtests.settings import LoadtestSettings
    from serving.settings import ServeSettings

    monkeypatch.setenv("LOCKGATE_REGISTRY_URL", str(tmp_path / "reg.db"))
    assert ServeSettings().registry_url == str(tmp_path / "reg.db")
    assert LoadtestSettings().registry_url == str(tmp_path / "reg.db")  # also a traffic source
    assert ServeSettings(registry_url="other.db").registry_url == "other.db"


def test_serve_never_creates_a_registry(tmp_path: Path) -> None:
    done = lockgate("serve", "--port", "1", cwd=tmp_path, env={"LOCKGATE_REGISTRY_URL": ""})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"no registry at {tmp_path.resolve() / '.lockgate' / 'registry.db'}" in done.stderr
    assert not (tmp_path / ".lockgate").exists()
    done = lockgate("serve", "--registry-url", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "is a directory, not a SQLite file" in done.stderr


def test_load_test_reports_are_0644(tmp_path: Path) -> None:
    import stat

    from loadtests.reports import write_json_atomic, write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "report.html", "<html></html>")
        write_json_atomic(tmp_path / "report.json", {"ok": True})
    finally:
        os.umask(old)
    for name in ("report.html", "report.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_retired_registry_variable_is_named(tmp_path: Path) -> None:
    done = lockgate("registry", "list", cwd=tmp_path, env={"LOCKGATE_SAFETY_REGISTRY_URL": "x.db"})
    assert "LOCKGATE_SAFETY_REGISTRY_URL is retired: set LOCKGATE_REGISTRY_URL instead" in done.stderr
