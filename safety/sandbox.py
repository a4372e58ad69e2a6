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
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safety.errors import SandboxError
from safety.isolation import Isolation

__all__ = ["SandboxCase", "SandboxLimits", "SandboxRun", "run_job"]

WORKER = Path(__file__).with_name("worker.py")
_POLL_SECONDS = 0.01
#: outputs larger than this are not written by the worker nor loaded by the gate (a model may inflate them)
MAX_OUTPUT_BYTES = 256 * 2**20
#: the worker's event log is read up to this size; the rest is ignored (a chatty or hostile worker)
MAX_EVENTS_BYTES = 8 * 2**20


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 2048
    cpu_seconds: int = 20
    wall_seconds: float = 20.0
    threads: int = 1
    python: str = sys.executable  # the interpreter of the worker (needs numpy, onnx, onnxruntime)
    isolation: Isolation = Isolation("none")


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
        elif self.killed_by == "SIGXCPU":
            # only RLIMIT_CPU sends SIGXCPU; under bwrap the grandchild's CPU seconds are not ours to read
            why = "was killed by SIGXCPU: it used up its CPU-seconds limit (RLIMIT_CPU)"
        elif self.killed_by == "SIGKILL" and self.cpu_seconds > 0.5:
            why = f"was killed by SIGKILL after {self.cpu_seconds:.1f} CPU seconds (RLIMIT_CPU)"
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
        job["max_output_bytes"] = MAX_OUTPUT_BYTES
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
        bundle = Path(job["model"]).parent if "model" in job else None
        run = _spawn(job_path, events_path, tmpdir, limits, bundle)
        case_ids = {c.id for c in cases or []}
        for event in run.events:
            if event.get("event") == "done" and event.get("files"):
                problem = _read_outputs(event, tmpdir, case_ids, run)
                if problem:
                    event["event"], event["error"] = "error", problem
        return run


def _read_outputs(event: dict[str, Any], tmpdir: Path, case_ids: set[str], run: SandboxRun) -> str:
    """Load a case's output files into ``run.outputs``; '' or why they were not read.

    Nothing the worker wrote is trusted: the files must be regular files in the scratch directory, named
    for a case the gate sent, and small enough on disk *before* they are opened."""
    case_id = event.get("id")
    files = event.get("files")
    if case_id not in case_ids or not isinstance(files, dict):
        return "the worker reported outputs for a case the gate did not send"
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for name, raw_path in files.items():
        path = Path(str(raw_path))
        if path.parent != tmpdir or not path.name.startswith(f"{case_id}."):
            return f"the worker named an output file outside its scratch directory ({str(path)[:80]})"
        try:
            st = path.lstat()
        except OSError as e:
            return f"output could not be read back: {e.strerror}"
        total += st.st_size
        if not stat.S_ISREG(st.st_mode):
            return "an output file is not a regular file"
        if total > MAX_OUTPUT_BYTES:
            return f"the outputs take more than {MAX_OUTPUT_BYTES // 2**20} MB for this batch; not read back"
        try:
            arrays[str(name)] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            return f"output could not be read back: {e}"
    run.outputs[str(case_id)] = arrays
    return ""


def _spawn(
    job_path: Path, events_path: Path, tmpdir: Path, limits: SandboxLimits, bundle: Path | None
) -> SandboxRun:
    argv = [
        limits.python,
        "-I",
        str(WORKER),
        str(job_path),
        str(events_path),
        str(limits.memory_mb),
        str(limits.cpu_seconds),
    ]
    if not (os.path.isfile(limits.python) and os.access(limits.python, os.X_OK)):
        raise SandboxError(
            f"cannot start the sandbox worker {limits.python} {WORKER}: not an executable file",
            "check the Python installation",
        )
    argv = limits.isolation.wrap(argv, tmpdir, bundle)
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
            peak_kb = max(peak_kb, _tree_peak_rss_kb(proc.pid))
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
    elif killed_by is None and limits.isolation.level == "bwrap" and 128 < proc.returncode < 128 + 65:
        # bwrap runs the worker as its child and exits with 128 + the signal that killed it
        with contextlib.suppress(ValueError):
            killed_by = signal.Signals(proc.returncode - 128).name
            proc.returncode = -(proc.returncode - 128)
    events = _read_events(events_path)
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


def _read_events(path: Path) -> list[dict[str, Any]]:
    """The worker's events: at most MAX_EVENTS_BYTES read, only JSON objects kept (a line cut short by a
    kill, or anything else the worker wrote, is skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return []
        data = f.read(MAX_EVENTS_BYTES)
    events = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


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


def _tree_peak_rss_kb(pid: int, depth: int = 0) -> int:
    """The largest VmHWM in the process tree under ``pid`` (isolation wrappers run the worker as a child
    or grandchild); a few levels deep at most."""
    peak = _peak_rss_kb(pid)
    if depth < 3:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
                children = [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            children = []
        for child in children:
            peak = max(peak, _tree_peak_rss_kb(child, depth + 1))
    return peak


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
