"""``lockgate <subcommand>``: a thin dispatcher; each subcommand's code lives in its package.

The subcommand module is imported by name only once chosen, and every subcommand module imports its
heavy libraries (torch, scikit-learn, ONNX Runtime, BentoML, SQLAlchemy) only when it runs, so
``lockgate <subcommand> --help`` stays well under half a second (``benchmarks/cli_help.py``).
"""

from __future__ import annotations

import importlib
import os
import sys

#: subcommand -> (module holding ``main(argv) -> int``, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.cli", "train, calibrate and export a model as an ONNX bundle"),
    "keygen": ("safety.keygen", "make the gate's Ed25519 signing key pair"),
    "check": ("safety.cli", "run the pre-deploy safety gate on a bundle (writes signed gate.json)"),
    "registry": ("cascade_registry.cli", "register, declare, keys, release (or shadow, canary), impact"),
    "serve": ("serving.cli", "run the BentoML gateway: released models, declared consumers only"),
    "predict": ("serving.predict_cli", "run a bundle's ONNX model on a CSV file: label + probabilities"),
    "loadtest": ("loadtests.cli", "Locust load test of a running gateway, judged by an SLO file"),
    "shift": ("training.shift_cli", "adversarial validation: is the test/production data shifted?"),
    "monitor": ("training.monitor_cli", "online accuracy, Brier, ECE and drift of a served model"),
    "feedback": ("cascade_registry.feedback_cli", "import true labels (CSV); prune old captured rows"),
    "analyze": ("training.analysis_cli", "error analysis of a bundle: slices, error clusters, bad labels"),
    "console": ("console.cli", "the registry's web console: models, cards, gate reports, cascade, audit"),
    "demo": ("lockgate.demo", "run the whole flow on the embedded demo data"),
}

#: (subcommand, its first argument) -> the module that runs it instead: a registry command that needs the gate
#: (``cascade_registry`` imports nothing of ours, so the registry CLI cannot run it itself)
ROUTES: dict[tuple[str, str], str] = {("registry", "revalidate"): "safety.revalidate"}

USAGE = "usage: lockgate <subcommand> [options]   (lockgate <subcommand> --help for details)"
#: the registry's former per-subcommand variables, now one: LOCKGATE_REGISTRY_URL
RETIRED_VARIABLES = (
    "LOCKGATE_SERVE_REGISTRY_URL",
    "LOCKGATE_SAFETY_REGISTRY_URL",
    "LOCKGATE_LOADTEST_REGISTRY_URL",
)


def _registry_lines() -> list[str]:
    from cascade_registry.settings import LOCATION_HELP, locate_registry  # pydantic: only for this help

    try:
        location = locate_registry()
    except ValueError as e:  # a malformed LOCKGATE_REGISTRY_* variable
        return [LOCATION_HELP, f"registry in use here: unknown ({str(e).splitlines()[0]})"]
    path = location.sqlite_path
    state = "" if path is None else ("" if path.is_file() else "; not created yet")
    return [LOCATION_HELP, f"registry in use here: {location.describe()}{state}"]


def _help() -> str:
    width = max(len(k) for k in SUBCOMMANDS)
    lines = [
        USAGE,
        "",
        "Move a model to production one checked stage at a time:",
        "train -> calibrate -> export to ONNX -> safety gate -> registry -> serve.",
        "",
        "subcommands:",
    ]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += [
        "",
        *_registry_lines(),
        "JSON: --json prints JSON to stdout; --json-out FILE writes it to a file.",
        "Durations: 90, 500ms, 3s, 2m, 1h30m, 30d.   Exit codes: 0 ok, 1 refused/failed, 2 usage error.",
    ]
    return "\n".join(lines)


def _warn_retired_variables() -> None:
    for name in RETIRED_VARIABLES:
        if os.environ.get(name):
            print(
                f"lockgate: warning: {name} is retired: set LOCKGATE_REGISTRY_URL instead (one variable "
                "for every subcommand) or pass --registry-url",
                file=sys.stderr,
            )


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``| head``): that is not an error."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(_help(), file=sys.stderr)
        return 2
    if args[0] in {"-h", "--help", "help"}:
        print(_help())
        return 0
    if args[0] in {"-V", "--version"}:
        from importlib.metadata import version

        print(f"lockgate {version('lockgate')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"lockgate: unknown subcommand {name!r}\n\n{_help()}", file=sys.stderr)
        return 2
    _warn_retired_variables()
    routed = ROUTES.get((name, rest[0])) if rest else None
    module = importlib.import_module(routed or SUBCOMMANDS[name][0])
    try:
        code = int(module.main(rest[1:] if routed else rest) or 0)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
