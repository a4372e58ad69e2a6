"""How the sandboxed worker is isolated from the machine, beyond its resource limits.

Three levels, the strongest the machine allows, found once per process by a probe run:

- ``bwrap`` (Debian's ``bubblewrap``): a new user namespace (the worker runs as ``nobody`` there, with
  no capability outside it), a new network namespace with no interface up (no network at all), a new PID
  namespace, and a read-only view of the whole file system (the bundle included) except the worker's
  own scratch directory; it dies with the gate.
- ``unshare`` (util-linux): a new network namespace (no network) and a new mount namespace in which the
  bundle directory is re-mounted read-only; the user stays the gate's own.
- ``none``: resource limits only (``RLIMIT_AS``, ``RLIMIT_CPU``, the wall-clock kill), as before.

``lockgate check --help`` says which level this machine gives; the verdict records it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = ["Isolation", "Level"]

Level = Literal["bwrap", "unshare", "none"]
_PROBE_SECONDS = 5.0

_DESCRIPTIONS: dict[str, str] = {
    "bwrap": "bubblewrap: no network, read-only file system (bundle included), user nobody, own PID space",
    "unshare": "unshare: no network, read-only bundle directory (same user)",
    "none": "resource limits only (no bwrap or unshare usable here: network and file system not isolated)",
}


@dataclass(frozen=True)
class Isolation:
    """How to wrap the worker's command line. Build with :meth:`detect` or :meth:`of`."""

    level: Level
    tool: str = ""

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self.level]

    @classmethod
    def of(cls, level: Level) -> Isolation:
        """The given level, or :class:`ValueError` when this machine cannot give it."""
        found = _probe(level)
        if found is None:
            raise ValueError(f"isolation {level!r} is not available on this machine")
        return found

    @classmethod
    def detect(cls) -> Isolation:
        """The strongest level that works here (probed once per process)."""
        return _strongest()

    def wrap(self, argv: list[str], scratch: Path, bundle: Path | None) -> list[str]:
        """``argv`` run under this isolation; ``scratch`` stays writable, ``bundle`` becomes read-only."""
        if self.level == "bwrap":
            return [
                self.tool,
                "--ro-bind", "/", "/",
                "--dev", "/dev",
                "--proc", "/proc",
                "--tmpfs", "/tmp",
                *[arg for path in _interpreter_paths_in_tmp() for arg in ("--ro-bind", path, path)],
                *(["--ro-bind", str(bundle), str(bundle)] if bundle is not None else []),
                "--bind", str(scratch), str(scratch),
                "--unshare-net",
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-user",
                "--uid", "65534",
                "--gid", "65534",
                "--die-with-parent",
                "--chdir", str(scratch),
                "--",
                *argv,
            ]  # fmt: skip
        if self.level == "unshare":
            target = str(bundle) if bundle is not None else str(scratch)
            script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
            user = [] if os.geteuid() == 0 else ["--map-root-user"]
            return [
                self.tool, "--net", "--mount", "--propagation", "private", *user,
                "sh", "-c", script, target, *argv,
            ]  # fmt: skip
        return argv


@lru_cache(maxsize=1)
def _interpreter_paths_in_tmp() -> tuple[str, ...]:
    """The interpreter, its virtualenv and the import path where they lie under /tmp (a clone and its
    .venv in /tmp, say): the worker's fresh /tmp would hide them, so they are bound back read-only."""
    executable_dir = os.path.dirname(os.path.realpath(sys.executable))
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, executable_dir}
    candidates.add(str(Path(__file__).resolve().parents[1]))  # lockgate's own packages (an editable install)
    candidates.update(p for p in sys.path if p and os.path.isdir(p))
    inside = sorted({os.path.realpath(p) for p in candidates} | candidates)
    in_tmp = [p for p in inside if p.startswith("/tmp/") and os.path.isdir(p)]
    return tuple(p for p in in_tmp if not any(p.startswith(q + "/") for q in in_tmp if q != p))


def _works(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@lru_cache(maxsize=4)
def _probe(level: Level) -> Isolation | None:
    if level == "none":
        return Isolation("none")
    tool = shutil.which("bwrap" if level == "bwrap" else "unshare")
    if tool is None:
        return None
    candidate = Isolation(level, tool)
    scratch = Path("/tmp")
    # the probe must see no network interface but loopback, and fail to write into the read-only view
    no_net = "test $(wc -l < /proc/net/dev) -le 3"
    check = ["sh", "-c", f'{no_net} && ! touch "$0/.lockgate-probe"', str(scratch)]
    if level == "bwrap":
        check = ["sh", "-c", f"{no_net} && ! touch /etc/.lockgate-probe"]
    return candidate if _works(candidate.wrap(check, scratch, scratch)) else None


@lru_cache(maxsize=1)
def _strongest() -> Isolation:
    for level in ("bwrap", "unshare"):
        found = _probe(level)  # type: ignore[arg-type]
        if found is not None:
            return found
    return Isolation("none")
