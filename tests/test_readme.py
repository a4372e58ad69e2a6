"""README.md runs as written: the walk-through block (train, gate, register, release, serve, one curl
with a body, stop) in a fresh directory with a real gateway on a free port, the tables walk-through
(a raw CSV with string columns and gaps to a curl with named columns), and the CI example's commands
with the policy file it names."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MARKER = "<!-- walk-through: tests/test_readme.py extracts and runs the next sh block -->"
TABLES_MARKER = "<!-- tables walk-through: tests/test_readme.py extracts and runs the next sh block -->"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _block_after(marker: str, fence: str) -> str:
    start = README.index(marker)
    match = re.compile(rf"```{fence}\n(.*?)```", re.S).search(README, start)
    assert match is not None, f"no ```{fence} block after {marker!r}"
    return match.group(1)


def _environment() -> dict[str, str]:
    """What '. .venv/bin/activate' gives: the project's lockgate first on PATH; no registry variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(script: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the gateway and its workers share this group: all stopped below
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing left to stop
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    port = _free_port()
    script = _block_after(MARKER, "sh").replace("3000", str(port))
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"created a new registry at {tmp_path.resolve() / '.lockgate' / 'registry.db'}" in done.stderr
    assert "released: wine:1" in done.stderr  # serve says what it serves
    assert '"ready": true' in done.stdout and '"serving": ["wine:1"]' in done.stdout
    assert re.search(r'"predictions":\[\{"label":"class_\d"', done.stdout.replace(" ", ""))
    assert "Traceback" not in done.stderr
    with socket.socket() as s:  # 'kill $SERVER' stopped the gateway
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_the_tables_walk_through_runs_as_written(tmp_path: Path) -> None:
    port = _free_port()
    keys = "lockgate keygen --out gate-key\nlockgate registry trust add gate-key.pub --label me\n"
    script = keys + _block_after(TABLES_MARKER, "sh").replace("3000", str(port))
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "island" in done.stdout and "categorical" in done.stdout  # --describe-data
    answer = done.stdout.replace(" ", "")
    assert re.search(r'"predictions":\[\{"label":"(Adelie|Chinstrap|Gentoo)"', answer), done.stdout[-2000:]
    scored = (tmp_path / "scored.csv").read_text().splitlines()
    assert scored[0] == "label,p_Adelie,p_Chinstrap,p_Gentoo" and len(scored) == 345
    assert "Traceback" not in done.stderr


def test_the_ci_example_uses_files_that_exist(tmp_path: Path) -> None:
    job = yaml.safe_load(_block_after("As a GitHub Actions job", "yaml"))
    commands = [step["run"] for step in job["jobs"]["gate"]["steps"] if "lockgate" in step.get("run", "")]
    section = README[README.index("## The gate in CI") : README.index("## Deploying the gateway")]
    shell_lines = re.findall(r"^lockgate check .*$", section, re.M)
    assert shell_lines and commands
    for line in [*commands, *shell_lines]:
        for policy in re.findall(r"--policy (\S+)", line):
            assert (ROOT / policy).is_file(), f"README refers to {policy}, which does not exist"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # what a checkout has
    done = _run("\n".join(commands), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "gate-junit.xml").is_file() and (tmp_path / "out" / "demo-1" / "gate.json").is_file()
