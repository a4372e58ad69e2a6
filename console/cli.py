"""``lockgate console``: serve the registry's web console, and manage its users.

    lockgate console --registry-url reg.db [--port 8700] [--actions]
    lockgate console user add alice --role operator --password-stdin
    lockgate console user list | user disable alice

Exit codes: 0 ok, 1 refused, 2 bad input, 3 registry unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any, NoReturn

from cascade_registry.errors import RegistryError, exit_status

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lockgate console", description="The registry's web console (read-only by default).")
    p.add_argument(
        "--registry-url",
        metavar="URL",
        help="SQLite path or database URL (else $LOCKGATE_REGISTRY_URL, else ./.lockgate/registry.db)",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8700)")
    p.add_argument("--actions", action="store_true", default=None, help="let logged-in operators act")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, help="manage console users")
    user = sub.add_parser("user", help="console users (stored in the registry)")
    usub = user.add_subparsers(dest="user_command", required=True, parser_class=_Parser, help="what to do")
    add = usub.add_parser("add", help="add a user")
    add.add_argument("name", help="the user's login name")
    add.add_argument(
        "--role", choices=["viewer", "operator"], default="viewer", help="viewer reads; operator also acts"
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    usub.add_parser("list", help="list users")
    dis = usub.add_parser("disable", help="disable a user")
    dis.add_argument("name", help="the user's login name")
    return p


def _users(args: argparse.Namespace, settings: Any) -> int:
    from cascade_registry import Registry  # SQLAlchemy: only when a command runs, never for --help

    actor = os.environ.get("LOCKGATE_REGISTRY_ACTOR") or getpass.getuser()
    with Registry.open(settings.registry_url) as reg:
        if args.user_command == "add":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
            user = reg.add_console_user(args.name, password, role=args.role, actor=actor)
            print(f"added console user {user.name} ({user.role})")
        elif args.user_command == "disable":
            print(f"disabled console user {reg.disable_console_user(args.name, actor=actor).name}")
        else:
            for u in reg.console_users():
                print(f"{u.name}\t{u.role}\t{'disabled' if u.disabled_at else 'active'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the web stack and SQLAlchemy load only when a command runs (``--help`` stays light)
    import uvicorn

    from console.app import create_app
    from console.settings import ConsoleSettings

    given = {k: v for k in ("registry_url", "host", "port", "actions") if (v := getattr(args, k)) is not None}
    try:
        settings = ConsoleSettings(**given)
    except ValueError as e:
        print(f"lockgate console: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    try:
        if args.command == "user":
            return _users(args, settings)
    except RegistryError as e:
        status = exit_status(e)
        print(f"lockgate console: {'refused' if status == 1 else 'error'}: {e}", file=sys.stderr)
        return status
    mode = "actions enabled" if settings.actions else "read-only"
    print(f"lockgate console on http://{settings.host}:{settings.port} ({mode})", file=sys.stderr)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0
