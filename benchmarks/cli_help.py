"""``lockgate <subcommand> --help``: wall time per subcommand (target: under 0.5 s) and the heavy libraries
each one imports, against a bare ``python -c pass`` measured in the same run.

    .venv/bin/python benchmarks/cli_help.py [--repeats 5]

Each figure is the best of ``--repeats`` fresh processes (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SUBCOMMANDS = [
    [],
    ["train"],
    ["check"],
    ["registry"],
    ["registry", "list"],
    ["serve"],
    ["predict"],
    ["loadtest"],
    ["shift"],
    ["analyze"],
    ["demo"],
]
HEAVY = [
    "torch", "sklearn", "onnxruntime", "onnx", "bentoml", "sqlalchemy", "alembic", "pandas", "matplotlib",
    "locust",
]
TARGET_SECONDS = 0.5

_PROBE = """
import contextlib, io, json, sys
from lockgate.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:] + ["--help"])
    except SystemExit as e:
        code = e.code
heavy = [m for m in %r if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _best(argv: list[str], repeats: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - t0)
        out = done.stdout
    return best, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per figure; the best counts")
    args = p.parse_args()
    baseline, _ = _best([sys.executable, "-c", "pass"], args.repeats)
    print(f"baseline: python -c pass  {baseline * 1000:7.0f} ms")
    print(f"{'command':<34}{'ms':>7}{'x base':>8}  {'<0.5s':<6} heavy imports")
    slow = 0
    for sub in SUBCOMMANDS:
        seconds, out = _best([sys.executable, "-c", _PROBE % (HEAVY,), *sub], args.repeats)
        probe = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"heavy": ["?"]}
        ok = seconds < TARGET_SECONDS
        slow += not ok
        name = " ".join(["lockgate", *sub, "--help"])
        heavy = ", ".join(probe["heavy"]) or "-"
        print(f"{name:<34}{seconds * 1000:7.0f}{seconds / baseline:8.1f}  {'yes' if ok else 'NO':<6} {heavy}")
    print(f"{len(SUBCOMMANDS) - slow}/{len(SUBCOMMANDS)} under {TARGET_SECONDS} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
