"""``lockgate keygen [--out PREFIX]``: make the gate's Ed25519 key pair.

Writes ``PREFIX`` (the private key, PEM, mode 0600: give it to the gate, e.g. as the CI secret
``LOCKGATE_GATE_SIGN_KEY``) and ``PREFIX.pub`` (the public key: ``lockgate registry trust add PREFIX.pub``).
Refuses to overwrite an existing key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cascade_registry.attestation import generate_private_key, key_id, private_key_pem, public_key_pem

__all__ = ["build_parser", "main", "write_key_pair"]


def write_key_pair(prefix: Path) -> str:
    """Write ``prefix`` (0600) and ``prefix.pub`` (0644); return the key id. ``FileExistsError`` if either
    exists."""
    key = generate_private_key()
    public = prefix.with_name(prefix.name + ".pub")
    if public.exists():
        raise FileExistsError(public)
    fd = os.open(prefix, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    fd = os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(public_key_pem(key))
    return key_id(key)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate keygen",
        description="Make the safety gate's Ed25519 signing key pair: PREFIX (private, 0600) and PREFIX.pub.",
    )
    p.add_argument("--out", type=Path, default=Path("gate-key"), metavar="PREFIX", help="default ./gate-key")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        kid = write_key_pair(args.out)
    except FileExistsError as e:
        print(
            f"lockgate keygen: {e.filename or e} exists; choose another --out (keys are never overwritten)",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        print(f"lockgate keygen: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"key {kid}: private {args.out} (keep secret), public {args.out}.pub")
    print(f"next: lockgate registry trust add {args.out}.pub --label ci-gate")
    print(f"      lockgate check BUNDLE --sign-key {args.out}   (or LOCKGATE_GATE_SIGN_KEY in CI)")
    return 0
