"""``lockgate check BUNDLE [--policy FILE] [--junit FILE] [--registry-url URL] [--serve] [--json]``.

Exit 0 when every check passes, 1 when any fails (or errors), 2 for a usage or harness error (a missing
path, a directory that is not a bundle, an unreadable policy). The checks (numpy, ONNX) are imported
only when the gate runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE
from cascade_registry.settings import ENV_VAR, RegistrySettings, locate_registry
from safety.errors import SafetyError
from safety.policy import load_policy
from safety.report import format_table, write_junit

__all__ = ["SafetySettings", "main"]


class SafetySettings(BaseSettings):
    """Defaults of ``lockgate check`` from the environment (``LOCKGATE_SAFETY_*``); flags override them."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SAFETY_", extra="ignore")

    policy: Path | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr and exit 2, no usage dump
        print(f"lockgate check: {message} (see 'lockgate check --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lockgate check",
        description="Run the pre-deploy safety gate on a bundle and write <bundle>/gate.json. "
        "Exit 0: every check passed; 1: a check failed; 2: usage or harness error.",
    )
    p.add_argument("bundle", type=Path, help="the bundle directory (model.onnx, card.json, reference.npz)")
    p.add_argument(
        "--policy",
        type=Path,
        help="gate policy TOML (default: the shipped safety/default_policy.toml; env LOCKGATE_SAFETY_POLICY)",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML for CI dashboards")
    p.add_argument(
        "--registry-url",
        metavar="URL",
        help=f"compare quality with the released version in this registry (else ${ENV_VAR}; "
        "without either, no comparison)",
    )
    p.add_argument(
        "--serve", action="store_true", help="also start 'lockgate serve --canary' and probe it over HTTP"
    )
    p.add_argument("--no-write", action="store_true", help="do not write gate.json (dry run)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--json", action="store_true", help="print the gate report as JSON instead of the table")
    return p


def _not_a_bundle(path: Path) -> str | None:
    """A directory with neither model.onnx nor card.json is a usage error (exit 2), not 18 failed checks."""
    if path.is_dir() and not (path / MODEL_FILE).exists() and not (path / CARD_FILE).exists():
        return (
            f"{path} is not a bundle: it has no {MODEL_FILE} and no {CARD_FILE} "
            "(pass the directory written by 'lockgate train', e.g. out/demo-1)"
        )
    return None


def _registry_problem(url: str) -> str | None:
    """Why the registry at ``url`` cannot be used (a harness problem, exit 2), or None."""
    try:
        from cascade_registry import Registry

        with Registry.open(url, create=False) as registry:
            registry.generation()
    except Exception as e:  # noqa: BLE001 - any failure to reach the registry is reported in one line
        return f"{type(e).__name__}: {e}"
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    problem = _not_a_bundle(args.bundle)
    if problem:
        print(f"lockgate check: {problem}", file=sys.stderr)
        return 2
    try:
        from safety.harness import run_gate  # numpy, ONNX and the checks: only when the gate runs

        settings = SafetySettings()
        policy = load_policy(args.policy or settings.policy)
        if args.junit and not args.junit.parent.is_dir():
            print(f"lockgate check: the directory of --junit {args.junit} does not exist", file=sys.stderr)
            return 2
        given = args.registry_url or RegistrySettings().url
        registry_url = locate_registry(given).url if given else None
        if registry_url:
            problem = _registry_problem(registry_url)
            if problem:
                print(f"lockgate check: --registry-url: {problem}", file=sys.stderr)
                return 2
        report = run_gate(
            args.bundle, policy, registry_url=registry_url, serve=args.serve, write=not args.no_write
        )
        if args.junit:
            write_junit(report, args.junit)
    except SafetyError as e:
        print(f"lockgate check: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"lockgate check: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lockgate check: interrupted; no gate.json was written", file=sys.stderr)
        return 130
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0 if report.passed else 1
    table = format_table(report)
    print(table.splitlines()[-1] if args.quiet else table)
    return 0 if report.passed else 1
