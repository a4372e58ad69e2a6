"""``lockgate registry``: versions, consumers, keys, declarations, releases and the cascade.

Exit codes: 0 done; 1 refused (unknown name, conflict, gate or cascade refusal, cycle);
2 bad input or usage; 3 the registry database cannot be reached (or does not exist yet, for a command
that only reads). Errors are one line on stderr. SQLAlchemy is imported only when a command runs.
"""

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
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel

from cascade_registry.artifacts import published_mode
from cascade_registry.errors import InvalidInputError, RegistryError, RegistryUnavailableError
from cascade_registry.manifest import ManifestError, read_bounded
from cascade_registry.rendering import (
    render_dot,
    render_impact,
    render_mermaid,
    render_pins,
    render_table,
    render_version,
    when,
)
from cascade_registry.settings import LOCATION_HELP, RegistrySettings, locate_registry

if TYPE_CHECKING:  # pragma: no cover
    from cascade_registry.registry import Registry

__all__ = ["READ_ONLY", "build_parser", "main"]

#: commands that never create a registry ("no registry at ..." instead)
READ_ONLY = {
    "list", "show", "impact", "graph", "audit", "pins", "consumer list", "key list", "trust list",
    "policy show",
}

EPILOG = f"""\
examples:
  lockgate registry register out/churn-1
  lockgate registry consumer add web --kind service --owner team-web
  lockgate registry key issue web                 # prints the key ONCE
  lockgate registry declare web churn --versions '>=1'
  lockgate registry trust add gate-key.pub --label ci-gate   # accept verdicts signed by this key
  lockgate registry release churn:1               # needs a passing, signed out/churn-1/gate.json
  lockgate registry release upstream:2 scorer:2  # atomically, upstream first
  lockgate registry revalidate scorer:1 --upstream upstream:2 --sign-key gate-key
  lockgate registry pins scorer:1
  lockgate registry impact churn
  lockgate registry graph --format dot --png cascade.png
  lockgate registry list --registry-url postgresql+psycopg://postgres@127.0.0.1:5432/test --json

register reads the bundle's gate.json if there is one; 'gate NAME:VERSION' records a verdict written
later (lockgate check after register); release re-reads gate.json and refuses without a passing one.

{LOCATION_HELP}; 'lockgate' prints the one in use.
Commands that only read (list, show, pins, impact, graph, audit, consumer/key/trust list, policy show) never
create one.
exit codes: 0 ok, 1 refused, 2 bad input, 3 registry unreachable or missing.   docs: docs/registry.md
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument(
        "--registry-url",
        metavar="URL",
        help="SQLite path, sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "(else $LOCKGATE_REGISTRY_URL, else ./.lockgate/registry.db)",
    )
    p.add_argument("--url", dest="registry_url", help=argparse.SUPPRESS)  # deprecated spelling
    p.add_argument("--json", action="store_true", help="print JSON to stdout instead of a table")
    p.add_argument(
        "--actor", help="who to record in the audit log (env LOCKGATE_REGISTRY_ACTOR; default: login)"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    p = _Parser(
        prog="lockgate registry",
        parents=[common],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The registry of models, their consumers and the cascade between them.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help_, description=help_, parents=[common])

    reg = add("register", "validate a bundle and record it (with its gate.json verdict, if any)")
    reg.add_argument("bundle", metavar="BUNDLE", help="bundle directory written by 'lockgate train'")
    reg.add_argument(
        "--owner",
        help="who answers for the model (recorded at its first version; default the actor): the only one "
        "whose waiver a release affecting it accepts",
    )
    add("list", "every version (of NAME) with its key metrics").add_argument(
        "name", metavar="NAME", nargs="?", help="only this model"
    )
    add("show", "a model's versions and consumers, or one version's details").add_argument(
        "target", metavar="NAME[:VERSION]", help="a model name, or name:version for one version"
    )
    add(
        "gate", "record the verdict of the bundle's gate.json (after 'lockgate check' on a registered bundle)"
    ).add_argument("ref", metavar="NAME:VERSION", help="e.g. churn:3")
    rel = add(
        "release",
        "release one or several versions atomically, upstreams first (each needs a passing gate report)",
    )
    rel.add_argument(
        "refs", metavar="NAME:VERSION", nargs="+", help="e.g. churn:3, or 'a:2 b:2' (all or nothing)"
    )
    rel.add_argument(
        "--waive",
        metavar="REASON",
        help="release although it is stale or leaves a released downstream model on an older pin; "
        "needs --owner; the reason is recorded and shown by impact",
    )
    rel.add_argument(
        "--owner", help="who waives: must be the recorded owner of every model the waiver is needed for"
    )
    add("pins", "the effective pins of a version: the upstream versions it is composed with").add_argument(
        "ref", metavar="NAME:VERSION", help="e.g. scorer:1"
    )
    add(
        "revalidate",
        "re-score a downstream version with a new upstream version and move its pin when it passes "
        "(run as 'lockgate registry revalidate', see its --help)",
    ).add_argument("rest", nargs=argparse.REMAINDER, help="see 'lockgate registry revalidate --help'")
    ret = add("retire", "take a version out of service for good")
    ret.add_argument("ref", metavar="NAME:VERSION", help="e.g. churn:3")
    ret.add_argument("--reason", required=True, help="why it is retired (recorded in the audit log)")
    add("impact", "every downstream consumer, in topological order, and what it must do").add_argument(
        "name", metavar="NAME", help="the model whose consumers to list"
    )
    graph = add("graph", "the cascade as Mermaid or Graphviz DOT")
    graph.add_argument(
        "--format", choices=["mermaid", "dot"], default="mermaid", help="text format (default mermaid)"
    )
    graph.add_argument("--png", metavar="FILE", type=Path, help="also render a PNG (needs Graphviz 'dot')")
    audit = add("audit", "the append-only log of every change")
    audit.add_argument("--subject", metavar="NAME", help="only entries about this model or consumer")
    audit.add_argument("--limit", metavar="N", type=int, help="only the N most recent entries")
    dec = add("declare", "consumer may call model (optionally a version range)")
    dec.add_argument("consumer", help="consumer name (see 'consumer add')")
    dec.add_argument("model", help="model name")
    dec.add_argument("--versions", metavar="RANGE", help="e.g. '2', '>=2,<5' (default: any)")
    und = add("undeclare", "remove a manual declaration")
    und.add_argument("consumer", help="consumer name")
    und.add_argument("model", help="model name")

    consumer = add("consumer", "add, list or revoke consumers").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    c_add = add("add", "add a consumer", consumer)
    c_add.add_argument("name", help="consumer name: lowercase letters, digits, '-', '_'")
    c_add.add_argument(
        "--kind",
        choices=["service", "model"],
        default="service",
        help="service (calls over HTTP) or model (a downstream model fed by this one); default service",
    )
    c_add.add_argument("--owner", required=True, help="the person or team answerable for it")
    add("list", "every consumer", consumer)
    add("revoke", "revoke a consumer and all its keys", consumer).add_argument("name", help="consumer name")

    trust = add("trust", "the gate keys whose signed verdicts are accepted").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    t_add = add("add", "trust a gate's public key (the .pub file of 'lockgate keygen')", trust)
    t_add.add_argument("public_key", metavar="KEY.pub", type=Path, help="public key file (PEM)")
    t_add.add_argument("--label", required=True, help="whose key this is, e.g. ci-gate")
    add("list", "the trusted keys", trust)
    add("remove", "stop trusting a key (by its id)", trust).add_argument(
        "key_id", metavar="KEY_ID", help="the key id shown by 'trust list'"
    )
    policy = add("policy", "the minimum gate policy a verdict must meet").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    add("show", "the minimum policy (JSON)", policy)
    add("set", "set the minimum policy from a gate policy TOML file", policy).add_argument(
        "file", metavar="POLICY.toml", type=Path, help="a gate policy file, e.g. examples/gate-policy.toml"
    )

    key = add("key", "issue, rotate or revoke API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    add("issue", "issue a new key (printed once)", key).add_argument("consumer", help="consumer name")
    add("rotate", "revoke the active keys and issue a new one", key).add_argument(
        "consumer", help="consumer name"
    )
    k_rev = add("revoke", "revoke the consumer's keys (or one key)", key)
    k_rev.add_argument("consumer", help="consumer name")
    k_rev.add_argument("--key-id", metavar="ID", help="revoke only this key (see 'key list'); default: all")
    add("list", "a consumer's keys (ids only)", key).add_argument("consumer", help="consumer name")
    return p


# ---------------------------------------------------------------------------------- commands
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


def _command(args: argparse.Namespace) -> str:
    action = getattr(args, "action", None)
    return f"{args.command} {action}" if action else args.command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "revalidate":  # lockgate/cli.py routes it to safety.revalidate (it runs the gate)
        print("lockgate registry: error: run revalidate as 'lockgate registry revalidate'", file=sys.stderr)
        return 2
    settings = RegistrySettings()
    location = locate_registry(getattr(args, "registry_url", None), settings)
    try:
        actor = getattr(args, "actor", None) or settings.actor or getpass.getuser()
    except (KeyError, OSError):
        actor = "cli"
    try:
        from cascade_registry.registry import Registry  # SQLAlchemy: only when a command runs

        with Registry.open(location.url, create=_command(args) not in READ_ONLY) as reg:
            if reg.created:
                print(f"lockgate registry: created a new registry at {location.describe()}", file=sys.stderr)
            _run(reg, args, actor)
            sys.stdout.flush()
    except BrokenPipeError:  # e.g. `lockgate registry list --json | head -1`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RegistryUnavailableError as e:
        print(f"lockgate registry: error: {e}", file=sys.stderr)
        return 3
    except InvalidInputError as e:
        print(f"lockgate registry: error: {e}", file=sys.stderr)
        return 2
    except RegistryError as e:
        print(f"lockgate registry: error: {e}", file=sys.stderr)
        return 1
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
