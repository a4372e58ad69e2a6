"""``lockgate serve``: run the BentoML gateway in the foreground.

    lockgate serve [--registry-url URL] [--host H] [--port P]     every released model of the registry
    lockgate serve --canary BUNDLE_DIR [--port P]                  one bundle from disk, no auth
    lockgate serve --workers N                                     N processes on one port (default: cores)
    lockgate serve --capture-rate 0.05 --capture-rate-for churn=1  capture 5 % of answers (churn: all)

Each worker is a process of its own (BentoML's ``workers``, sharing the listening socket): its own
ONNX Runtime sessions, micro-batcher, registry poller and access cache. Their Prometheus series are
summed on every ``/metrics`` scrape from prometheus_client's multiprocess files, in a directory of this
run (BentoML's home is pointed at a fresh temporary directory, removed again when the server stops).

Options override ``LOCKGATE_SERVE_*`` environment variables; the registry is found by the one rule of
every subcommand (``--registry-url``, else ``LOCKGATE_REGISTRY_URL``, else ``./.lockgate/registry.db``)
and is never created here: serving an empty new registry would only ever answer "not ready".
Exit codes: 0 clean stop, 2 usage error (bad option, unusable bundle, missing or unusable registry,
port taken), otherwise the server's own exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from cascade_registry.durations import DURATION_HELP, duration_option
from cascade_registry.errors import RegistryError
from cascade_registry.settings import (
    ENV_VAR,
    LOCATION_HELP,
    RegistryLocation,
    RegistrySettings,
    locate_registry,
)

from .errors import BundleRejectedError
from .settings import ServeSettings

__all__ = ["build_parser", "environment", "main", "serve_command"]

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate serve",
        description="Serve every released, gate-bound model of the registry (or one canary bundle).",
        epilog=f"{LOCATION_HELP}; it must exist (lockgate registry register ... creates it). "
        f"Durations: {DURATION_HELP}.",
    )
    p.add_argument(
        "--registry-url",
        metavar="URL",
        help=f"SQLite path or database URL (else ${ENV_VAR}, else ./.lockgate/registry.db)",
    )
    p.add_argument(
        "--canary",
        type=Path,
        metavar="BUNDLE_DIR",
        help="serve this bundle from disk, without the registry and without auth",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="worker processes, each with its own ONNX Runtime sessions and batcher (default: one per core)",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 3000)")
    p.add_argument(
        "--poll-interval", type=duration_option, help="time between registry polls (default 1s)"
    )
    p.add_argument("--no-batching", action="store_true", help="one ONNX Runtime call per request")
    p.add_argument(
        "--timeout", type=duration_option, help="time before a request gets 504, whole seconds (default 10s)"
    )
    p.add_argument(
        "--capture-rate",
        type=_share,
        metavar="SHARE",
        help="share of requests whose answers are captured for 'lockgate monitor' (default 0.01; 0 = off)",
    )
    p.add_argument(
        "--capture-rate-for",
        action="append",
        type=_model_share,
        default=[],
        metavar="MODEL=SHARE",
        help="a model's own capture rate (repeatable), e.g. --capture-rate-for churn=0.5",
    )
    p.add_argument(
        "--capture-store",
        choices=["registry", "parquet", "off"],
        help="where captured rows go: the registry database (default), rolling Parquet files, nowhere",
    )
    p.add_argument("--capture-dir", type=Path, metavar="DIR", help="directory of the Parquet capture files")
    p.add_argument(
        "--capture-registry",
        metavar="DB",
        help="another registry database (SQLite path or URL) for the captured rows (default: the served one)",
    )
    p.add_argument(
        "--allow-extra-columns",
        action="store_true",
        help="ignore named columns the model does not know (default: 422, which catches misspellings)",
    )
    return p


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= 256):
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 256, got {text!r}")
    return int(text)


def _share(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1 (or 0% to 100%), got {text!r}")
    return value


def _model_share(text: str) -> tuple[str, float]:
    model, sep, share = text.partition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError(f"expected MODEL=SHARE, e.g. churn=0.5, got {text!r}")
    return model, _share(share)


def _settings(args: argparse.Namespace) -> tuple[ServeSettings, RegistryLocation]:
    overrides = {
        "registry_url": args.registry_url,
        "canary": args.canary,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "poll_interval": args.poll_interval,
        "timeout": args.timeout,
        "batching": False if args.no_batching else None,
        "allow_extra_columns": True if args.allow_extra_columns else None,
        "capture_rate": args.capture_rate,
        "capture_rates": dict(args.capture_rate_for) or None,
        "capture_store": args.capture_store,
        "capture_dir": args.capture_dir.resolve() if args.capture_dir else None,
        "capture_registry": locate_registry(args.capture_registry).url if args.capture_registry else None,
    }
    settings = ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    # the BentoML worker runs in the repository directory: hand it absolute paths
    # the flag, else LOCKGATE_REGISTRY_URL (already read by ServeSettings), else the default file
    location = locate_registry(args.registry_url, RegistrySettings(url=settings.registry_url))
    update: dict[str, object] = {"registry_url": location.url}
    if settings.canary is not None:
        update["canary"] = settings.canary.resolve()
    return settings.model_copy(update=update), location


def environment(settings: ServeSettings) -> dict[str, str]:
    """The variables that hand ``settings`` to the BentoML worker process (``LOCKGATE_SERVE_*``, and the
    registry as ``LOCKGATE_REGISTRY_URL``, the one name every subcommand reads)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude={"metrics_dir"}).items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[ENV_VAR if name == "registry_url" else f"LOCKGATE_SERVE_{name.upper()}"] = text
    return env


def serve_command(settings: ServeSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:Gateway",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--working-dir",
        str(ROOT),
    ]


def _preflight(settings: ServeSettings, location: RegistryLocation) -> str:
    """Fail fast, with one readable line, on what would only show up later in a worker log; say what
    will be served."""
    if settings.canary is not None:
        from .predictor import OnnxPredictor

        OnnxPredictor.from_bundle(settings.canary, canary=True)
        what = f"canary {settings.canary}"
    else:
        from cascade_registry import Registry

        with Registry.open(location.url, create=False) as registry:
            released = sorted(str(info.ref) for info in registry.released())
        what = f"registry {location.describe()}; released: " + (
            ", ".join(released)
            or "none yet (/readyz stays not ready until 'lockgate registry release NAME:VERSION')"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.host, settings.port))
        except OSError as e:
            raise OSError(
                f"cannot listen on {settings.host}:{settings.port}: {e.strerror}; pick another --port"
            ) from None
    return what


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings, location = _settings(args)
        what = _preflight(settings, location)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if where:
            message = f"--{where.replace('_', '-')}: {err['msg']} (got {err.get('input')!r})"
        else:
            message = err["msg"].removeprefix("Value error, ")
        print(f"lockgate serve: {message}", file=sys.stderr)
        return 2
    except BundleRejectedError as e:
        print(f"lockgate serve: cannot serve the bundle: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(
            f"lockgate serve: the registry is not available ({e}); use --canary BUNDLE_DIR", file=sys.stderr
        )
        return 2
    except RegistryError as e:  # no registry there, unreachable, not a registry
        print(f"lockgate serve: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # SQLAlchemy surprises, port taken
        print(f"lockgate serve: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"lockgate serve: {what}", file=sys.stderr)
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    print(
        f"lockgate serve: on http://{settings.host}:{settings.port}, {workers} (Ctrl+C to stop)",
        file=sys.stderr,
    )
    # BentoML keeps the workers' Prometheus files in $BENTOML_HOME/prometheus_multiproc_dir and empties
    # it at start: a home of this run's own, so two gateways on one machine never share (or wipe) them
    home = tempfile.mkdtemp(prefix="lockgate-serve-")
    try:
        env = {**os.environ, **environment(settings), "BENTOML_HOME": home}
        child = subprocess.Popen(serve_command(settings), env=env)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        code = child.wait()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code
