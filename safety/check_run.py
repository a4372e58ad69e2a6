"""The run of ``lockgate check`` once its arguments are parsed (:mod:`safety.cli`): settings, signing key,
policy, registry, the gate itself, and the table, JSON or JUnit output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE
from cascade_registry.attestation import key_id
from cascade_registry.settings import RegistrySettings, locate_registry
from safety.errors import SafetyError
from safety.harness import run_gate
from safety.policy import load_policy
from safety.report import format_table, write_junit
from safety.settings import SafetySettings, read_sign_key

__all__ = ["run_check"]


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


def run_check(args: argparse.Namespace) -> int:
    """Run the gate as the parsed ``lockgate check`` arguments ask; print the verdict; the exit code."""
    problem = _not_a_bundle(args.bundle)
    if problem:
        print(f"lockgate check: {problem}", file=sys.stderr)
        return 2
    try:
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
        source = args.sign_key or (settings.sign_key.get_secret_value() if settings.sign_key else None)
        what = "--sign-key" if args.sign_key else "LOCKGATE_GATE_SIGN_KEY"
        key = read_sign_key(source, what) if source else None
        report = run_gate(
            args.bundle,
            policy,
            registry_url=registry_url,
            serve=args.serve,
            write=not args.no_write,
            sign_key=key,
            holdout=args.holdout,
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
    if not args.no_write:
        print(
            f"gate.json signed by key {key_id(key)}"
            if key is not None
            else "gate.json is UNSIGNED: the registry will refuse it "
            "(pass --sign-key or LOCKGATE_GATE_SIGN_KEY)",
            file=sys.stderr if key is None else sys.stdout,
        )
    return 0 if report.passed else 1
