"""``lockgate check BUNDLE [--sign-key FILE] [--policy FILE] [--holdout FILE] [--junit FILE]
[--registry-url URL] [--serve] [--json]``.

Exit 0 when every check passes, 1 when any fails (or errors), 2 for a usage or harness error (a missing
path, a directory that is not a bundle, an unreadable policy or key).
The signing key comes from ``--sign-key FILE`` or, in CI, from ``LOCKGATE_GATE_SIGN_KEY`` (the PEM text
itself, or a path to it); without one the verdict is written unsigned and the registry will refuse it.
This module holds the parser only (argparse and the stdlib-only isolation probe): the run itself
(:mod:`safety.check_run`: pydantic, the key, the policy, numpy, ONNX and the checks) is imported once the
arguments are parsed, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cascade_registry.location import ENV_VAR
from safety.isolation import Isolation

__all__ = ["OneLineParser", "build_parser", "main"]


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line on stderr and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:
        print(f"{self.prog}: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="lockgate check",
        description="Run the pre-deploy safety gate on a bundle and write <bundle>/gate.json, the verdict "
        "signed over the sha256 of every file of the bundle. "
        "Exit 0: every check passed; 1: a check failed; 2: usage or harness error.",
        epilog=f"sandbox isolation on this machine: {Isolation.detect().description}.",
    )
    p.add_argument("bundle", type=Path, help="the bundle directory (model.onnx, card.json, reference.npz)")
    p.add_argument(
        "--policy",
        type=Path,
        help="gate policy TOML (default: the shipped safety/default_policy.toml; env LOCKGATE_SAFETY_POLICY)",
    )
    p.add_argument(
        "--sign-key",
        metavar="FILE",
        help="the gate's Ed25519 private key (PEM, from 'lockgate keygen'); env LOCKGATE_GATE_SIGN_KEY "
        "holds the PEM text or a path. Without a key gate.json is unsigned and the registry refuses it",
    )
    p.add_argument(
        "--holdout",
        type=Path,
        metavar="FILE",
        help="score quality on this held-out .npz (holdout_inputs, holdout_labels, optional "
        "holdout_segments) instead of the rows the bundle's author supplied in reference.npz",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML for CI dashboards")
    p.add_argument(
        "--registry-url",
        metavar="URL",
        help=f"compare quality with the released version in this registry (else ${ENV_VAR}; "
        "without either, no comparison)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="once every sandboxed check passed, also start 'lockgate serve --canary' (under the sandbox's "
        "memory and CPU limits) and probe it over HTTP",
    )
    p.add_argument("--no-write", action="store_true", help="do not write gate.json (dry run)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--json", action="store_true", help="print the gate report as JSON instead of the table")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    from safety.check_run import run_check  # pydantic, the policy, the checks: only once parsed

    return run_check(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
