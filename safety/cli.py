"""``lockgate check BUNDLE [--sign-key FILE] [--policy FILE] [--holdout FILE] [--junit FILE]
[--registry-url URL] [--serve] [--json]``.

Exit 0 when every check passes, 1 when any fails (or errors), 2 for a usage or harness error (a missing
path, a directory that is not a bundle, an unreadable policy or key).
The signing key comes from ``--sign-key FILE`` or, in CI, from ``LOCKGATE_GATE_SIGN_KEY`` (the PEM text
itself, or a path to it); without one the verdict is written unsigned and the registry will refuse it.
The checks (numpy, ONNX) are imported only when the gate runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE
from cascade_registry.attestation import AttestationError, key_id, load_private_key
from cascade_registry.manifest import ManifestError, read_bounded
from cascade_registry.settings import ENV_VAR, RegistrySettings, locate_registry
from safety.errors import GateUsageError, SafetyError
from safety.isolation import Isolation
from safety.policy import load_policy
from safety.report import format_table, write_junit

__all__ = ["OneLineParser", "SafetySettings", "main", "read_sign_key"]


class SafetySettings(BaseSettings):
    """Defaults of ``lockgate check`` from the environment (``LOCKGATE_SAFETY_*``); flags override them."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SAFETY_", extra="ignore")

    policy: Path | None = None
    sign_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("LOCKGATE_GATE_SIGN_KEY", "LOCKGATE_SAFETY_SIGN_KEY"),
        description="the gate's Ed25519 private key: PEM text, or the path of a PEM file",
    )


def read_sign_key(source: str | Path, what: str) -> Ed25519PrivateKey:
    """The private key in PEM text ``source`` or in the file it names; raises :class:`GateUsageError`."""
    text = str(source)
    try:
        pem = text.lstrip().startswith("-----BEGIN")
        data = text.encode("ascii") if pem else read_bounded(text, 64 * 1024)
        return load_private_key(data, what)
    except (ManifestError, AttestationError, UnicodeEncodeError) as e:
        raise GateUsageError(
            f"{what}: {e}", "make a key pair with 'lockgate keygen --out gate-key'"
        ) from None


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
