"""Run a model in a resource-limited child process and collect what it did.

The parent never parses or executes the ONNX file itself: :func:`run_job` writes a job file, starts
``safety/worker.py`` with ``python -I`` (isolated: no user site, no PYTHON* variables), polls it with
``os.wait4`` (to get the child's own peak RSS and CPU time even when it was killed) and kills its whole
process group when the wall-clock timeout passes. The worker sets RLIMIT_AS / RLIMIT_CPU itself before
it imports anything heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safety.errors import SandboxError

__all__ = ["SandboxCase", "SandboxLimits", "SandboxRun", "run_job"]

WORKER = Path(__file__).with_name("worker.py")
_POLL_SECONDS = 0.01
#: outputs larger than this are not loaded into the gate's process (a model may inflate its outputs)
MAX_OUTPUT_BYTES = 256 * 2**20


def _nbytes(meta: dict[str, Any]) -> int:
    try:
        return int(np.prod(meta["shape"], dtype=np.int64)) * np.dtype(meta["dtype"]).itemsize
    except (KeyError, TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 2048
    cpu_seconds: int = 20
    wall_seconds: float = 20.0
    threads: int = 1
    python: str = sys.executable  # the interpreter of the worker (needs numpy, onnx, onnxruntime)


@dataclass(frozen=True)
class SandboxCase:
    """One input batch to run ``repeat`` times; outputs are kept when ``save``."""

    id: str
    array: np.ndarray
    repeat: int = 1
    save: bool = True
    min_seconds: float = 0.0  # keep repeating until this much wall time was spent (for CPU-time figures)
    categorical: np.ndarray | None = None  # str [N, n_categorical]: the graph's 'categorical' input


@dataclass
class SandboxRun:
    """Everything the worker reported, plus how it ended."""

    events: list[dict[str, Any]]
    exit_code: int | None
    killed_by: str | None  # "timeout", a signal name, or None
    wall_seconds: float
    cpu_seconds: float
    maxrss_mb: float
    stderr: str
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def first(self, event: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == event), None)

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The ``done`` or ``error`` event of a case, or None when it never finished."""
        return next(
            (e for e in self.events if e.get("event") in {"done", "error"} and e.get("id") == case_id), None
        )

    @property
    def running(self) -> str | None:
        """The id of the case the worker started but never finished (it died or hung on it)."""
        started = [e["id"] for e in self.events if e.get("event") == "start"]
        return next((c for c in reversed(started) if self.case(c) is None), None)

    @property
    def ended_cleanly(self) -> bool:
        return self.exit_code == 0 and self.first("end") is not None

    def death(self) -> str:
        """A readable reason for an abnormal end, '' when the worker ended cleanly."""
        if self.ended_cleanly:
            return ""
        if self.killed_by == "timeout":
            why = f"did not finish within the {self.wall_seconds:.1f} s wall-clock limit (killed)"
        elif self.killed_by in {"SIGXCPU", "SIGKILL"} and self.cpu_seconds > 0.5:
            why = f"was killed by {self.killed_by} after {self.cpu_seconds:.1f} CPU seconds (RLIMIT_CPU)"
        elif self.killed_by:
            why = f"was killed by {self.killed_by}"
        else:
            why = f"exited with code {self.exit_code}"
        fatal = self.first("fatal")
        if fatal:
            why += f" ({fatal['error']})"
        elif (
            "bad_alloc" in self.stderr or "MemoryError" in self.stderr or "Failed to allocate" in self.stderr
        ):
            why += " (memory allocation failed under RLIMIT_AS)"
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
        if tail and not fatal:
            why += f"; last stderr line: {tail[0][:200]}"
        return f"sandboxed worker {why}"


def run_job(job: dict[str, Any], limits: SandboxLimits, cases: list[SandboxCase] | None = None) -> SandboxRun:
    """Run one worker job under ``limits``. Raises :class:`SandboxError` only when it cannot start."""
    with tempfile.TemporaryDirectory(prefix="lockgate-sandbox-") as tmp:
        tmpdir = Path(tmp)
        job = dict(job)
        if cases is not None:
            job["outdir"] = str(tmpdir)
            job["threads"] = limits.threads
            job["cases"] = []
            for i, case in enumerate(cases):
                path = tmpdir / f"in-{i}.npy"
                np.save(path, case.array, allow_pickle=False)
                cat_path = None
                if case.categorical is not None:
                    cat_path = tmpdir / f"in-{i}.categorical.npy"
                    np.save(cat_path, np.asarray(case.categorical, dtype=str), allow_pickle=False)
                job["cases"].append(
                    {
                        "id": case.id,
                        "file": str(path),
                        "categorical_file": None if cat_path is None else str(cat_path),
                        "repeat": case.repeat,
                        "min_seconds": case.min_seconds,
                        "save": case.save,
                    }
                )
        job_path, events_path = tmpdir / "job.json", tmpdir / "events.jsonl"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        events_path.touch()
        run = _spawn(job_path, events_path, tmpdir, limits)
        for event in run.events:
            if event.get("event") == "done" and event.get("files"):
                size = sum(_nbytes(meta) for meta in event.get("outputs", {}).values())
                if size > MAX_OUTPUT_BYTES:
                    event["event"] = "error"
                    event["error"] = (
                        f"the outputs take {size / 2**20:.0f} MB for this batch "
                        f"(> {MAX_OUTPUT_BYTES // 2**20} MB); not read back"
                    )
                    continue
                try:
                    run.outputs[event["id"]] = {
                        name: np.load(path, allow_pickle=False) for name, path in event["files"].items()
                    }
                except (OSError, ValueError) as e:
                    event["event"], event["error"] = "error", f"output could not be read back: {e}"
        return run


def _spawn(job_path: Path, events_path: Path, tmpdir: Path, limits: SandboxLimits) -> SandboxRun:
    argv = [
        limits.python,
        "-I",
        str(WORKER),
        str(job_path),
        str(events_path),
        str(limits.memory_mb),
        str(limits.cpu_seconds),
    ]
    env = {
        "PATH": os.defpath,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "HOME": str(tmpdir),
        "TMPDIR": str(tmpdir),
    }
    stderr_path = tmpdir / "stderr.txt"
    start = time.monotonic()
    try:
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                cwd=tmpdir,
                start_new_session=True,
            )
    except OSError as e:
        raise SandboxError(
            f"cannot start the sandbox worker {limits.python} {WORKER}: {e}", "check the Python installation"
        ) from e
    killed_by: str | None = None
    deadline = start + limits.wall_seconds
    peak_kb = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
            if time.monotonic() > deadline:
                killed_by = "timeout"
                _kill_group(proc.pid)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(_POLL_SECONDS)
    except BaseException:  # Ctrl+C or anything else in the gate: never leave a worker behind
        _kill_group(proc.pid)
        with contextlib.suppress(ChildProcessError):
            os.wait4(proc.pid, 0)
        proc.returncode = -signal.SIGKILL
        raise
    _kill_group(proc.pid)  # threads or children the model left behind
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    if killed_by is None and os.WIFSIGNALED(status):
        killed_by = signal.Signals(os.WTERMSIG(status)).name
    events = []
    for line in events_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by the kill
    with open(stderr_path, "rb") as f:  # only the tail: a chatty runtime can write a lot
        f.seek(max(0, stderr_path.stat().st_size - 4000))
        stderr = f.read().decode("utf-8", errors="replace")
    return SandboxRun(
        events=events,
        exit_code=proc.returncode,
        killed_by=killed_by,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        maxrss_mb=max([peak_kb] + [int(e.get("maxrss_kb", 0)) for e in events]) / 1024.0,
        stderr=stderr,
    )


def _peak_rss_kb(pid: int) -> int:
    """VmHWM (peak RSS of the current process image) of a running child; 0 when unreadable.

    ``ru_maxrss`` from ``wait4`` is not used: Linux carries the parent's RSS over fork+exec into it.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
