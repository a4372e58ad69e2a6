"""``lockgate loadtest``: run Locust against a running gateway and judge the run against an SLO file.

Exit codes: 0 every objective held; 1 an objective broke (the table says which and by how much);
2 usage or harness error (bad option, unreadable SLO or traffic file, gateway unreachable);
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cascade_registry.durations import DURATION_HELP
from cascade_registry.location import LOCATION_HELP

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError

    from loadtests.settings import LoadtestSettings

__all__ = ["build_parser", "main"]

PROG = "lockgate loadtest"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Load-test a running lockgate gateway with Locust and check service-level objectives.",
        epilog="Every option also reads LOCKGATE_LOADTEST_<OPTION> (e.g. LOCKGATE_LOADTEST_USERS=20). "
        f"Durations: {DURATION_HELP}. {LOCATION_HELP}. "
        "Exit: 0 objectives held, 1 an objective broke, 2 usage/harness error. See docs/loadtests.md.",
    )
    a = p.add_argument
    a("--host", help="gateway base URL (default http://127.0.0.1:3000)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--step",
        dest="mode",
        action="store_const",
        const="step",
        help="step load: add users until an objective breaks; report the capacity",
    )
    mode.add_argument(
        "--soak",
        dest="mode",
        action="store_const",
        const="soak",
        help="soak: steady load for --duration while sampling the server's memory",
    )
    a("--users", type=int, help="concurrent users (default 10)")
    a("--spawn-rate", type=float, help="users started per second (default 5)")
    a("--duration", help="run length: 90, 30s, 5m, 1h (default 20s)")
    a("--think-time", help="each user waits up to this long between calls (default 0)")
    a("--slo", type=Path, help="SLO file (TOML); default: the packaged default_slo.toml")
    a("--traffic", type=Path, help="traffic file: consumers, keys, weights (and bundles without a registry)")
    a(
        "--registry-url",
        metavar="URL",
        help="read released models and declarations from this registry (else $LOCKGATE_REGISTRY_URL)",
    )
    a(
        "--use-registry",
        action="store_const",
        const=True,
        help="read the registry even without --registry-url (./.lockgate/registry.db)",
    )
    a(
        "--rotate-keys",
        action="store_const",
        const=True,
        help="DEMO ONLY: rotate each declared consumer's key to obtain one (old keys stop working)",
    )
    a("--refused-share", type=float, help="share of requests that must be refused/rejected (default 0.1)")
    a("--max-batch", type=int, help="cap rows per request below each model's maximum")
    a("--seed", type=int, help="seed for payloads and traffic mix")
    a("--report-dir", type=Path, help="folder for CSV, HTML and JSON reports (default .lockgate/loadtest)")
    a("--ui", action="store_const", const=True, help="also serve Locust's web UI during the run")
    a("--ui-host", help="web UI address (default 127.0.0.1)")
    a("--ui-port", type=int, help="web UI port (default 8089)")
    a("--server-pid", type=int, help="gateway process id (default: found by the port on this machine)")
    a("--ready-timeout", help="wait this long for the gateway to be ready (default 30s)")
    a("--start-users", type=int, help="step mode: users of the first step (default --step-users)")
    a("--step-users", type=int, help="step mode: users added per step (default 5)")
    a("--step-duration", help="step mode: measured seconds per step (default 10s)")
    a("--max-users", type=int, help="step mode: stop here (default 200)")
    a("--memory-interval", help="soak mode: time between memory samples (default 5s)")
    a("--warmup", help="soak mode: load before the measured window (default 10%% of --duration, <= 60s)")
    a("--json", dest="print_json", action="store_const", const=True,
      help="print the result (figures, verdict) as JSON on stdout instead of the tables")
    a("--json-out", type=Path, metavar="FILE", help="also write the result as JSON to FILE")
    return p


def _settings(args: argparse.Namespace) -> LoadtestSettings:
    from loadtests.settings import LoadtestSettings  # pydantic-settings: not for --help

    given = {k: v for k, v in vars(args).items() if v is not None}
    return LoadtestSettings(**given)


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]).replace("_", "-")
    where = f"--{where}: " if where else ""
    return f"{where}{err['msg']}".replace("Value error, ", "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError  # not for --help

    try:
        settings = _settings(args)
    except ValidationError as e:
        print(f"{PROG}: {_one_line(e)}", file=sys.stderr)
        return 2
    # Locust needs gevent's monkey-patching before ssl/socket users are imported: do it here, once.
    from gevent import monkey

    monkey.patch_all()
    # Locust's web UI re-parses sys.argv with Locust's own parser on every page load; our options are
    # parsed already, so it must see none of them.
    sys.argv = sys.argv[:1]
    from loadtests.errors import LoadtestError
    from loadtests.orchestrator import run_loadtest

    try:
        return run_loadtest(settings)
    except LoadtestError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
