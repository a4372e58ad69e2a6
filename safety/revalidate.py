"""``lockgate registry revalidate CONSUMER:V --upstream UPSTREAM:V [--sign-key FILE] [--dry-run]``: re-score a
downstream version with a new upstream version and move its pin when it passes (the work is
:mod:`safety.rescoring`, imported only when the command runs, so ``--help`` stays fast).

Exit codes: 0 pinned (or passed, with ``--dry-run``); 1 failed or refused; 2 bad input; 3 no registry.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from cascade_registry.errors import InvalidInputError, RegistryError, exit_status
from cascade_registry.settings import LOCATION_HELP, RegistrySettings, locate_registry
from safety.cli import OneLineParser
from safety.errors import RevalidationError, SafetyError
from safety.settings import SafetySettings, read_sign_key

if TYPE_CHECKING:  # pragma: no cover
    from safety.rescoring import RevalidationResult

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="lockgate registry revalidate",
        description="Re-score a downstream version with a new upstream version's outputs on its held-out "
        "rows, through the gate's quality checks under its recorded gate policy; when it passes, sign the "
        "evidence and move its pin. Exit 0 pinned, 1 failed or refused, 2 bad input, 3 no registry.",
        epilog=f"{LOCATION_HELP}. docs: docs/registry.md (cascade pins)",
    )
    p.add_argument("consumer", metavar="NAME:VERSION", help="the downstream version, e.g. scorer:1")
    p.add_argument("--upstream", required=True, metavar="NAME:VERSION", help="the new upstream, e.g. a:2")
    p.add_argument("--registry-url", metavar="URL", help="the registry (else $LOCKGATE_REGISTRY_URL)")
    p.add_argument(
        "--sign-key",
        metavar="FILE",
        help="the gate's Ed25519 private key (PEM); env LOCKGATE_GATE_SIGN_KEY. The registry records a "
        "pin only with evidence signed by a trusted gate key",
    )
    p.add_argument("--dry-run", action="store_true", help="score and report, record nothing (no key needed)")
    p.add_argument(
        "--actor", help="who to record in the audit log (env LOCKGATE_REGISTRY_ACTOR; default: login)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def _render(r: RevalidationResult) -> str:
    keys = sorted(set(r.before) | set(r.after))
    lines = [
        f"{r.consumer} on {r.upstream} (was {r.previous}), {r.holdout_rows} held-out rows",
        f"  {'metric':<20} {'before':>10} {'after':>10}",
    ]
    lines += [f"  {k:<20} {r.before.get(k, '-')!s:>10} {r.after.get(k, '-')!s:>10}" for k in keys]
    if r.passed:
        lines.append(
            f"PASS: {r.consumer} pinned to {r.upstream}" if r.pin else "PASS (dry run: nothing recorded)"
        )
    else:
        lines.append("FAIL: " + "; ".join(r.problems))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    prog = "lockgate registry revalidate"
    settings = RegistrySettings()
    try:
        actor = args.actor or settings.actor or getpass.getuser()
    except (KeyError, OSError):
        actor = "cli"
    try:
        from cascade_registry import Registry  # SQLAlchemy, numpy, the checks: only when the command runs
        from safety.rescoring import revalidate

        key = None
        if not args.dry_run:
            safety = SafetySettings()
            source = args.sign_key or (safety.sign_key.get_secret_value() if safety.sign_key else None)
            if source is None:
                raise InvalidInputError("a pin needs signed evidence", "pass --sign-key FILE, or --dry-run")
            key = read_sign_key(source, "--sign-key" if args.sign_key else "LOCKGATE_GATE_SIGN_KEY")
        location = locate_registry(args.registry_url, settings)
        with Registry.open(location.url, create=False) as reg:
            result = revalidate(
                reg, args.consumer, args.upstream, sign_key=key, actor=actor, record=not args.dry_run
            )
    except RegistryError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return exit_status(e)
    except SafetyError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, RevalidationError) else 2
    print(result.model_dump_json(indent=2) if args.json else _render(result))
    return 0 if result.passed else 1
