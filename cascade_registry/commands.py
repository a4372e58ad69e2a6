"""The commands of ``lockgate registry`` once :mod:`cascade_registry.cli` has parsed them: each calls one
:class:`~cascade_registry.registry.Registry` method and prints its answer as a table or as JSON."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cascade_registry.artifacts import published_mode
from cascade_registry.errors import InvalidInputError, NotFoundError, RegistryError, exit_status
from cascade_registry.manifest import ManifestError, read_bounded
from cascade_registry.registry import Registry
from cascade_registry.rendering import (
    render_dot,
    render_impact,
    render_mermaid,
    render_pins,
    render_rollout,
    render_table,
    render_version,
    when,
)
from cascade_registry.settings import RegistrySettings, locate_registry
from cascade_registry.sql_rollout import pinned_downstream

__all__ = ["run_command"]


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):

        def plain(x: Any) -> Any:
            if isinstance(x, BaseModel):
                return x.model_dump(mode="json")
            if isinstance(x, list):
                return [plain(i) for i in x]
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            return x

        print(json.dumps(plain(data), indent=2, sort_keys=True))
    else:
        print(text)


def _versions_table(infos: list) -> str:
    return render_table(
        ["model", "version", "status", "stale", "f1_macro", "accuracy", "ece"]
        + ["registered", "released", "sha256"],
        [
            [
                i.ref.name,
                i.ref.version,
                i.status,
                "yes" if i.stale else "",
                f"{i.card.metrics.f1_macro:.3f}",
                f"{i.card.metrics.accuracy:.3f}",
                f"{i.card.metrics.ece:.3f}",
                when(i.registered_at),
                when(i.released_at),
                i.onnx_sha256[:12],
            ]
            for i in infos
        ],
    )


def _show(reg: Registry, args: argparse.Namespace) -> None:
    if ":" in args.target:
        info = reg.get(args.target)
        history, pins = reg.transitions(info.ref), reg.pins(info.ref)
        text = render_version(info, history) + ("\n  pins\n" + render_pins(pins) if pins else "")
        _emit(args, {"version": info, "history": history, "pins": pins}, text)
        return
    versions = reg.versions(args.target)
    decls = reg.declarations(model_name=args.target)
    text = (
        _versions_table(versions)
        + "\n\nconsumers\n"
        + render_table(
            ["consumer", "kind", "versions", "source"],
            [
                [
                    d.consumer,
                    d.consumer_kind,
                    d.versions or "*",
                    d.source if d.source == "manual" else f"card of {d.consumer}:{d.consumer_version}",
                ]
                for d in decls
            ],
        )
    )
    _emit(args, {"versions": versions, "consumers": decls}, text)


def _graph(reg: Registry, args: argparse.Namespace) -> None:
    cascade = reg.cascade()
    dot = render_dot(cascade)
    text = dot if args.format == "dot" else render_mermaid(cascade)
    if args.png is not None:
        exe = shutil.which("dot")
        if exe is None:
            raise InvalidInputError(
                "cannot write a PNG: Graphviz 'dot' is not installed",
                "install graphviz, or use the DOT/Mermaid text",
            )
        out = args.png.resolve()
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.fchmod(fd, published_mode())
        os.close(fd)
        try:
            subprocess.run([exe, "-Tpng", "-o", tmp], input=dot.encode(), check=True, capture_output=True)
            os.replace(tmp, out)
        finally:
            Path(tmp).unlink(missing_ok=True)
        print(f"wrote {out}", file=sys.stderr)
    _emit(args, {"format": args.format, "text": text, "png": str(args.png) if args.png else None}, text)


def _run(reg: Registry, args: argparse.Namespace, actor: str) -> None:  # noqa: C901 - a flat dispatch table
    cmd = args.command
    if cmd == "register":
        info = reg.register(args.bundle, actor=actor, owner=getattr(args, "owner", None))
        _emit(args, info, f"registered {info.ref} [{info.status}] sha256 {info.onnx_sha256[:12]}")
    elif cmd == "list":
        infos = reg.versions(args.name)
        _emit(args, infos, _versions_table(infos))
    elif cmd == "show":
        _show(reg, args)
    elif cmd == "gate":
        info = reg.record_gate(args.ref, actor=actor)
        _emit(args, info, f"{info.ref} is {info.status}")
    elif cmd == "release" and (getattr(args, "shadow", False) or getattr(args, "canary", None) is not None):
        _start_rollout(reg, args, actor)
    elif cmd in ("promote", "rollback", "rollout"):
        _rollout(reg, args, actor)
    elif cmd == "release":
        waiver, owner = getattr(args, "waive", None), getattr(args, "owner", None)
        infos = reg.release_many(args.refs, waiver=waiver, actor=actor, owner=owner)
        done = ", ".join(str(i.ref) for i in infos)
        _emit(args, infos if len(infos) > 1 else infos[0], f"released {done}" + (
            f" (waiver by {owner})" if waiver else ""))
    elif cmd == "pins":
        pins = reg.pins(args.ref)
        _emit(args, pins, render_pins(pins))

    elif cmd == "retire":
        info = reg.retire(args.ref, reason=args.reason, actor=actor)
        _emit(args, info, f"retired {info.ref}")
    elif cmd == "impact":
        report = reg.impact(args.name)
        _emit(args, report, render_impact(report))
    elif cmd == "graph":
        _graph(reg, args)
    elif cmd == "audit":
        entries = reg.audit(getattr(args, "subject", None), getattr(args, "limit", None))
        _emit(
            args,
            entries,
            render_table(
                ["id", "when", "actor", "action", "subject", "details"],
                [
                    [e.id, when(e.at), e.actor, e.action, e.subject, json.dumps(e.details, sort_keys=True)]
                    for e in entries
                ],
            ),
        )
    elif cmd == "declare":
        d = reg.declare(args.consumer, args.model, getattr(args, "versions", None), actor=actor)
        _emit(args, d, f"{d.consumer} may call {d.model} (versions {d.versions or '*'})")
    elif cmd == "undeclare":
        reg.undeclare(args.consumer, args.model, actor=actor)
        _emit(
            args,
            {"consumer": args.consumer, "model": args.model},
            f"{args.consumer} no longer declares {args.model}",
        )
    elif cmd == "consumer":
        _consumer(reg, args, actor)
    elif cmd == "key":
        _key(reg, args, actor)
    elif cmd == "trust":
        _trust(reg, args, actor)
    elif cmd == "policy":
        _policy(reg, args, actor)


def _start_rollout(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    mode = "shadow" if getattr(args, "shadow", False) else "canary"
    if len(args.refs) != 1 or getattr(args, "waive", None) is not None:
        raise InvalidInputError(
            f"a {mode} rollout takes one NAME:VERSION and no --waive", "roll out one model at a time"
        )
    share, sticky = getattr(args, "canary", None), getattr(args, "sticky", "request_id")
    r = reg.start_rollout(args.refs[0], mode, share, sticky=sticky, actor=actor)
    how = "runs beside it on every request (answers compared, never returned)"
    if mode == "canary":
        how = f"answers {r.share:.2%} of the direct requests (sticky per {r.sticky})"
    keep = pinned_downstream(reg.cascade(), r.model)
    text = f"{r.candidate} {how}; {r.live} stays released" + (
        f"\ndownstream models keep their pins: {', '.join(keep)}" if keep else ""
    )
    _emit(args, r, text + f"\nfinish with 'lockgate registry promote {r.candidate}' or 'rollback {r.model}'")


def _rollout(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    if args.command == "promote":
        ended, info = reg.promote(
            args.ref, waiver=getattr(args, "waive", None), actor=actor, owner=getattr(args, "owner", None)
        )
        text = f"promoted {info.ref}: released, {ended.live} superseded"
        _emit(args, {"rollout": ended, "released": info}, text)
    elif args.command == "rollback":
        active = reg.rollout(args.name)
        r = reg.rollback(args.name, actor=actor)
        what = f"stopped the {r.mode} of {r.candidate}" if active else f"undid the promote of {r.candidate}"
        _emit(args, r, f"{what}: {r.live} is released and answers every request")
    else:
        history = reg.rollouts(args.name)
        if not history and not reg.versions(args.name):
            raise NotFoundError(f"no model named {args.name!r} is registered", "see 'lockgate registry list'")
        current = history[0] if history else None
        figures = None
        if getattr(args, "gateway", None) is not None:
            if current is None:
                raise InvalidInputError(
                    f"{args.name} has never had a rollout", "start one with 'release NAME:VERSION --shadow'"
                )
            from cascade_registry.rollout_figures import fetch_figures  # httpx: only for --gateway

            figures = fetch_figures(args.gateway, current)
        keep = pinned_downstream(reg.cascade(), args.name)
        _emit(
            args,
            {"rollout": current if current and current.ended_at is None else None, "history": history,
             "figures": figures, "downstream_keep_pins": keep},
            render_rollout(args.name, history, figures, keep),
        )


def _trust(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    if args.action == "add":
        try:
            text = read_bounded(args.public_key, 64 * 1024).decode("ascii", errors="replace")
        except ManifestError as e:
            raise InvalidInputError(f"cannot read {args.public_key}: {e.problem}") from None
        k = reg.trust_key(text, args.label, actor=actor)
        _emit(args, k, f"trusting gate key {k.key_id} ({k.label})")
    elif args.action == "remove":
        k = reg.distrust_key(args.key_id, actor=actor)
        _emit(args, k, f"no longer trusting gate key {k.key_id} ({k.label})")
    else:
        keys = reg.trusted_keys()
        _emit(
            args,
            keys,
            render_table(
                ["key id", "label", "added", "by"],
                [[k.key_id, k.label, when(k.added_at), k.added_by] for k in keys],
            ),
        )


def _policy(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    if args.action == "set":
        try:
            raw = tomllib.loads(read_bounded(args.file, 1 << 20).decode("utf-8"))
        except (ManifestError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidInputError(f"cannot read the policy {args.file}: {e}") from None
        policy = reg.set_min_policy(raw, actor=actor)
        _emit(args, policy, f"minimum gate policy set from {args.file}")
    else:
        policy = reg.min_policy()
        _emit(args, policy, policy.model_dump_json(indent=2))


def _consumer(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    if args.action == "add":
        c = reg.add_consumer(args.name, kind=args.kind, owner=args.owner, actor=actor)
        _emit(args, c, f"added {c.kind} consumer {c.name} (owner {c.owner})")
    elif args.action == "list":
        cs = reg.consumers()
        _emit(
            args,
            cs,
            render_table(
                ["consumer", "kind", "owner", "keys", "created", "revoked"],
                [
                    [c.name, c.kind, c.owner, c.active_keys, when(c.created_at), when(c.revoked_at)]
                    for c in cs
                ],
            ),
        )
    else:
        c = reg.revoke_consumer(args.name, actor=actor)
        _emit(args, c, f"revoked consumer {c.name} and its keys")


def _key(reg: Registry, args: argparse.Namespace, actor: str) -> None:
    if args.action in ("issue", "rotate"):
        fn = reg.issue_key if args.action == "issue" else reg.rotate_key
        key = fn(args.consumer, actor=actor)
        _emit(args, {"consumer": args.consumer, "key": key}, key)
        print(
            "store this key now: it is shown once and the registry keeps only a salted hash", file=sys.stderr
        )
    elif args.action == "revoke":
        ids = reg.revoke_key(args.consumer, key_id=getattr(args, "key_id", None), actor=actor)
        _emit(args, {"consumer": args.consumer, "revoked": ids}, f"revoked key(s) {', '.join(ids)}")
    else:
        keys = reg.keys(args.consumer)
        _emit(
            args,
            keys,
            render_table(
                ["key id", "created", "by", "revoked"],
                [[k.key_id, when(k.created_at), k.created_by, when(k.revoked_at)] for k in keys],
            ),
        )


def run_command(args: argparse.Namespace, create: bool) -> int:
    """Run the parsed ``lockgate registry`` command (``create``: it may create the registry); print its
    answer; return the exit code."""
    settings = RegistrySettings()
    location = locate_registry(getattr(args, "registry_url", None), settings)
    try:
        actor = getattr(args, "actor", None) or settings.actor or getpass.getuser()
    except (KeyError, OSError):
        actor = "cli"
    try:
        with Registry.open(location.url, create=create) as reg:
            if reg.created:
                print(f"lockgate registry: created a new registry at {location.describe()}", file=sys.stderr)
            _run(reg, args, actor)
            sys.stdout.flush()
    except BrokenPipeError:  # e.g. `lockgate registry list --json | head -1`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RegistryError as e:
        print(f"lockgate registry: error: {e}", file=sys.stderr)
        return exit_status(e)
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"lockgate registry: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(
            f"lockgate registry: error: Graphviz failed: {e.stderr.decode(errors='replace').strip()}",
            file=sys.stderr,
        )
        return 1
    return 0
