"""``lockgate serve``: run the BentoML gateway in the foreground.

    lockgate serve [--registry-url URL] [--host H] [--port P]     every released model of the registry
    lockgate serve --canary BUNDLE_DIR [--port P]                  one bundle from disk, no auth

Options override ``LOCKGATE_SERVE_*`` environment variables. Exit codes: 0 clean stop, 2 usage error
(bad option, unusable bundle or registry, port taken), otherwise the server's own exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from .errors import BundleRejectedError
from .settings import ServeSettings

__all__ = ["environment", "main", "serve_command"]

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate serve",
        description="Serve every released, gate-bound model of the registry (or one canary bundle).",
    )
    p.add_argument("--registry-url", help="registry URL (default: the SQLite file .lockgate/registry.db)")
    p.add_argument(
        "--canary",
        type=Path,
        metavar="BUNDLE_DIR",
        help="serve this bundle from disk, without the registry and without auth",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 3000)")
    p.add_argument("--poll-interval", type=float, help="seconds between registry polls (default 1)")
    p.add_argument("--no-batching", action="store_true", help="one ONNX Runtime call per request")
    p.add_argument("--timeout", type=int, help="seconds before a request gets 504 (default 10)")
    p.add_argument(
        "--allow-extra-columns",
        action="store_true",
        help="ignore named columns the model does not know (default: 422, which catches misspellings)",
    )
    return p


def _settings(args: argparse.Namespace) -> ServeSettings:
    overrides = {
        "registry_url": args.registry_url,
        "canary": args.canary,
        "host": args.host,
        "port": args.port,
        "poll_interval": args.poll_interval,
        "timeout": args.timeout,
        "batching": False if args.no_batching else None,
        "allow_extra_columns": True if args.allow_extra_columns else None,
    }
    settings = ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    # the BentoML worker runs in the repository directory: hand it absolute paths
    update: dict[str, object] = {"registry_url": _absolute_url(settings.registry_url)}
    if settings.canary is not None:
        update["canary"] = settings.canary.resolve()
    return settings.model_copy(update=update)


def _absolute_url(url: str | None) -> str:
    """The registry URL with any relative SQLite path made absolute (None -> the registry's default file)."""
    if url is None:
        from cascade_registry.engine import DEFAULT_PATH

        return f"sqlite:///{(Path.cwd() / DEFAULT_PATH).resolve()}"
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return (
            url
            if path.startswith("/") or path.startswith(":memory:")
            else f"sqlite:///{Path(path).resolve()}"
        )
    if "://" not in url:
        return str(Path(url).resolve())
    return url


def environment(settings: ServeSettings) -> dict[str, str]:
    """The ``LOCKGATE_SERVE_*`` variables that hand ``settings`` to the BentoML worker process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"LOCKGATE_SERVE_{name.upper()}"] = str(value)
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


def _preflight(settings: ServeSettings) -> None:
    """Fail fast, with one readable line, on what would only show up later in a worker log."""
    if settings.canary is not None:
        from .predictor import OnnxPredictor

        OnnxPredictor.from_bundle(settings.canary, canary=True)
    else:
        from cascade_registry import Registry

        Registry.open(settings.registry_url).generation()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.host, settings.port))
        except OSError as e:
            raise OSError(
                f"cannot listen on {settings.host}:{settings.port}: {e.strerror}; pick another --port"
            ) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        _preflight(settings)
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
    except Exception as e:  # registry open failures (RegistryError, SQLAlchemy), port taken
        print(f"lockgate serve: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    mode = (
        f"canary {settings.canary}" if settings.canary else f"registry {settings.registry_url or 'default'}"
    )
    print(
        f"lockgate serve: {mode} on http://{settings.host}:{settings.port} (Ctrl+C to stop)", file=sys.stderr
    )
    child = subprocess.Popen(serve_command(settings), env={**os.environ, **environment(settings)})

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    code = child.wait()
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code
