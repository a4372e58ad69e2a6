"""``lockgate <subcommand>``: a thin dispatcher; each subcommand's code lives in its package."""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module holding ``main(argv) -> int``, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.cli", "train, calibrate and export a model as an ONNX bundle"),
    "keygen": ("safety.keygen", "make the gate's Ed25519 signing key pair"),
    "check": ("safety.cli", "run the pre-deploy safety gate on a bundle (writes signed gate.json)"),
    "registry": ("cascade_registry.cli", "register, declare consumers, issue keys, release, show impact"),
    "serve": ("serving.cli", "run the BentoML gateway: released models, declared consumers only"),
    "loadtest": ("loadtests.cli", "Locust load test of a running gateway, judged by an SLO file"),
    "shift": ("training.shift_cli", "adversarial validation: is the test/production data shifted?"),
    "analyze": ("training.analysis_cli", "error analysis of a bundle: slices, error clusters, bad labels"),
    "demo": ("lockgate.demo", "run the whole flow on the embedded demo data"),
}

USAGE = "usage: lockgate <subcommand> [options]   (lockgate <subcommand> --help for details)"


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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
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
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
