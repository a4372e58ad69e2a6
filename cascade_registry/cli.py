"""``lockgate registry``: versions, consumers, keys, declarations, releases and the cascade.

Exit codes: 0 done; 1 refused (unknown name, conflict, gate or cascade refusal, cycle);
2 bad input or usage; 3 the registry database cannot be reached (or does not exist yet, for a command
that only reads). Errors are one line on stderr. This module holds the parser (argparse only); the
commands (:mod:`cascade_registry.commands`: pydantic, SQLAlchemy) are imported once the arguments are
parsed, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from cascade_registry.location import LOCATION_HELP

__all__ = ["READ_ONLY", "build_parser", "main"]

#: commands that never create a registry ("no registry at ..." instead)
READ_ONLY = {
    "list", "show", "impact", "graph", "audit", "pins", "consumer list", "key list", "trust list",
    "policy show", "rollout",
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
  lockgate registry release churn:2 --shadow      # churn:2 runs beside churn:1; its answers are compared
  lockgate registry release churn:2 --canary 10%  # churn:2 answers 10 % of the direct requests
  lockgate registry rollout churn --gateway http://127.0.0.1:3000   # agreement and latency by role
  lockgate registry promote churn:2               # or: lockgate registry rollback churn
  lockgate registry revalidate scorer:1 --upstream upstream:2 --sign-key gate-key
  lockgate registry pins scorer:1
  lockgate registry impact churn
  lockgate registry graph --format dot --png cascade.png
  lockgate registry list --registry-url postgresql+psycopg://postgres@127.0.0.1:5432/test --json

register reads the bundle's gate.json if there is one; 'gate NAME:VERSION' records a verdict written
later (lockgate check after register); release re-reads gate.json and refuses without a passing one.

{LOCATION_HELP}; 'lockgate' prints the one in use.
Commands that only read (list, show, pins, impact, graph, audit, rollout, consumer/key/trust list, policy
show) never create one.
A shadow or canary rollout routes direct callers only: downstream models keep composing the version they
are pinned to. While one runs, a plain release of that model is refused: promote or roll back first.
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
    how = rel.add_mutually_exclusive_group()
    how.add_argument(
        "--shadow",
        action="store_true",
        help="do not release: run the version beside the released one on every request, off the response "
        "path, and compare its answers (never returned); finish with 'promote' or 'rollback'",
    )
    how.add_argument(
        "--canary",
        metavar="SHARE",
        help="do not release: let the version answer SHARE of the direct requests (e.g. 10%%); finish with "
        "'promote' or 'rollback'",
    )
    rel.add_argument(
        "--sticky",
        choices=["request_id", "consumer"],
        default="request_id",
        help="what a canary hashes to pick its share: the caller's X-Request-Id (default; a request "
        "without one is a random draw) or the consumer (each consumer sees one version)",
    )
    pro = add("promote", "release the candidate of the rollout in progress and end the rollout")
    pro.add_argument("ref", metavar="NAME:VERSION", help="the candidate, e.g. churn:2")
    pro.add_argument("--waive", metavar="REASON", help="as for release (a stale candidate); needs --owner")
    pro.add_argument("--owner", help="who waives (the recorded owner of the model)")
    add(
        "rollback",
        "end the rollout in progress (the live version answers everything), or undo the last promote",
    ).add_argument("name", metavar="NAME", help="the model")
    out = add("rollout", "a model's rollout: state and history, and with --gateway its figures by role")
    out.add_argument("name", metavar="NAME", help="the model")
    out.add_argument(
        "--gateway",
        metavar="URL",
        help="read agreement, |dp| and latency by role from this gateway's /metrics "
        "(e.g. http://127.0.0.1:3000)",
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


def _command(args: argparse.Namespace) -> str:
    action = getattr(args, "action", None)
    return f"{args.command} {action}" if action else args.command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "revalidate":  # lockgate/cli.py routes it to safety.revalidate (it runs the gate)
        print("lockgate registry: error: run revalidate as 'lockgate registry revalidate'", file=sys.stderr)
        return 2
    from cascade_registry.commands import run_command  # pydantic, SQLAlchemy: only once parsed

    return run_command(args, create=_command(args) not in READ_ONLY)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
