"""``lockgate loadtest`` usage errors: one readable line on stderr, exit 2, never a traceback.

Help and option errors stop before any load (in-process); a run that reaches the files is a subprocess:
the CLI monkey-patches the standard library with gevent once it runs load.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lockgate.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _loadtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockgate.cli", "loadtest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    try:
        code = main(["loadtest", *args])
    except SystemExit as e:  # argparse's --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def test_help_lists_the_modes_and_exit_codes(capsys):
    proc = _in_process(capsys, "--help")
    assert proc.returncode == 0
    for word in ("--step", "--soak", "--ui", "--slo", "--traffic", "--report-dir", "--json-out", "Exit: 0"):
        assert word in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "no traffic source: pass --traffic FILE"),
        (("--traffic", "t.toml", "--duration", "soon"), "--duration: duration 'soon' is not like 90, 30s"),
        (("--traffic", "t.toml", "--users", "0"), "--users: Input should be greater than or equal to 1"),
        (("--traffic", "t.toml", "--host", "localhost:3000"), "is not a base URL like http://127.0.0.1:3000"),
    ],
)
def test_bad_options_say_what_and_how(args, fragment, capsys):
    proc = _in_process(capsys, *args)
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_files_are_harness_errors(tmp_path):
    slo = tmp_path / "slo.toml"
    slo.write_text('[[objectives]]\nmetric = "p95_ms"\n', encoding="utf-8")
    traffic = tmp_path / "traffic.toml"
    traffic.write_text('[models.demo]\nbundle = "missing"\n\n[consumers.web]\nkey = "k"\nmodels = ["demo"]\n')
    proc = _loadtest("--traffic", str(traffic), "--slo", str(slo))
    assert proc.returncode == 2 and "exactly one of 'max' or 'min'" in proc.stderr
    proc = _loadtest("--traffic", str(traffic))
    assert proc.returncode == 2 and "missing" in proc.stderr and "is not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
