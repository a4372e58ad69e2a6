"""``lockgate demo``: the whole flow on the embedded demo data (breast_cancer), then a two-model cascade.

train + calibrate + export -> safety gate (signed with the demo's own key, <out>/gate-key) -> registry
(trust that key, register, declare a consumer, release) -> a cascade on generated tables
(:mod:`training.synthetic`): ``risk`` trained, gated, registered, released; ``credit`` trained on
``--upstream risk:1``, gated, registered, released -> serve (every released model; the gateway composes
``credit`` with its pinned ``risk``).
It ends with the gateway running on 127.0.0.1:3000 (Ctrl+C stops it) unless ``--no-serve`` is given.
The demo keeps its own registry under ``<out>/registry.db`` so it can be run again and again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

DEMO_MODEL = "demo"
ALLOWED_CONSUMER = "demo-app"
REFUSED_CONSUMER = "other-app"
#: the cascade: UPSTREAM predicts the intermediate label 'risky', DOWNSTREAM decides 'default' from it
UPSTREAM, DOWNSTREAM = "risk", "credit"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate demo",
        description="Train, gate, register, release and serve the demo model (breast_cancer, calibrated).",
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="working folder (default ./demo-out)")
    p.add_argument("--port", type=int, default=3000, help="gateway port on 127.0.0.1 (default 3000)")
    p.add_argument("--no-serve", action="store_true", help="stop after the release; do not start the gateway")
    return p


def _step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def _curl_lines(port: int, allowed_key: str, refused_key: str, means: list[float]) -> str:
    row = [f"{m:.4g}" for m in means]  # a typical row: each feature at its training mean
    url = f"http://127.0.0.1:{port}/predict"
    body_ok = f'{{"model": "{DEMO_MODEL}", "inputs": [[{", ".join(row)}]]}}'
    bad = ", ".join(['"not a number"', *row[1:]])
    body_bad = f'{{"model": "{DEMO_MODEL}", "inputs": [[{bad}]]}}'
    hdr = "-H 'Content-Type: application/json'"
    return "\n".join(
        [
            "# allowed: a declared consumer gets label, calibrated probabilities and the model's identity",
            f"curl -s {hdr} -H 'Authorization: Bearer {allowed_key}' -d '{body_ok}' {url}",
            "# refused (403): a consumer that was never declared for this model",
            f"curl -s {hdr} -H 'Authorization: Bearer {refused_key}' -d '{body_ok}' {url}",
            "# bad input (422): says what was wrong and how to fix it",
            f"curl -s {hdr} -H 'Authorization: Bearer {allowed_key}' -d '{body_bad}' {url}",
            f"# the cascade: {DOWNSTREAM}'s raw columns only; the gateway runs its pinned {UPSTREAM}:1 first "
            "(the answer's model block lists it under 'upstream')",
            f"curl -s {hdr} -H 'Authorization: Bearer {allowed_key}' -d '{_cascade_body()}' {url}",
            f"# metrics: curl -s http://127.0.0.1:{port}/metrics | grep lockgate_",
        ]
    )


def _cascade_body() -> str:
    row = {"g1": 0.8, "g2": 1.1, "g3": 0.3, "g4": 0.2, "region": "north", "h1": 0.5, "h2": -0.4}
    return json.dumps({"model": DOWNSTREAM, "instances": [row]})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from cascade_registry import Registry, RegistryError
    from safety.cli import main as check_main
    from safety.keygen import write_key_pair
    from training.cli import main as train_main

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    _step("1/5 train, calibrate and export (lockgate train)")
    code = train_main(["--out", str(out), "--name", DEMO_MODEL, "--version", "1", "--overwrite"])
    if code:
        return code
    bundle = out / f"{DEMO_MODEL}-1"

    key = out / "gate-key"
    if not key.exists():
        print(f"the gate's signing key: {key} (lockgate keygen --out {key})")
        write_key_pair(key)
    _step(f"2/5 safety gate, including a canary gateway (lockgate check {bundle} --serve --sign-key {key})")
    code = check_main([str(bundle), "--serve", "--sign-key", str(key)])
    if code:
        print("lockgate demo: the gate refused the demo bundle; see the table above", file=sys.stderr)
        return code

    _step("3/5 registry: trust the gate key, register, declare a consumer, release (lockgate registry)")
    db = out / "registry.db"
    for leftover in out.glob("registry.db*"):
        leftover.unlink()
    url = f"sqlite:///{db}"
    try:
        with Registry.open(url) as reg:
            reg.trust_key(Path(f"{key}.pub").read_text(), label="demo gate", actor="demo")
            reg.add_consumer(ALLOWED_CONSUMER, kind="service", owner="demo team", actor="demo")
            reg.add_consumer(REFUSED_CONSUMER, kind="service", owner="someone else", actor="demo")
            allowed_key = reg.issue_key(ALLOWED_CONSUMER, actor="demo")
            refused_key = reg.issue_key(REFUSED_CONSUMER, actor="demo")
    except RegistryError as e:
        print(f"lockgate demo: registry: {e}", file=sys.stderr)
        return 2
    released = _publish(url, bundle, declare=True)
    if released is None:
        return 2
    print(f"registered and released {released.ref} (sha256 {released.onnx_sha256[:12]}…) in {db}")
    print(f"consumer {ALLOWED_CONSUMER!r} is declared for {DEMO_MODEL!r}; {REFUSED_CONSUMER!r} is not")
    (out / "keys.txt").write_text(f"{ALLOWED_CONSUMER} {allowed_key}\n{REFUSED_CONSUMER} {refused_key}\n")
    print(f"their API keys (shown once, stored hashed in the registry) are in {out / 'keys.txt'}")

    code = _cascade(out, key, url)
    if code:
        return code

    _step("5/5 serve (lockgate serve)")
    print(_curl_lines(args.port, allowed_key, refused_key, [f.mean for f in released.card.features]))
    if args.no_serve:
        print(f"\n--no-serve: start it with: lockgate serve --registry-url {url} --port {args.port}")
        return 0
    if shutil.which("curl") is None:
        print("(curl is not installed; any HTTP client will do)")
    from serving.cli import main as serve_main

    print(flush=True)
    return serve_main(["--registry-url", url, "--host", "127.0.0.1", "--port", str(args.port)])


def _publish(url: str, bundle: Path, declare: bool) -> Any:
    """Register ``bundle``, declare ALLOWED_CONSUMER for it when ``declare``, release it: the released
    version, or None (said on stderr) when the registry refuses."""
    from cascade_registry import Registry, RegistryError

    try:
        with Registry.open(url) as reg:
            version = reg.register(bundle, actor="demo")
            if declare:
                reg.declare(ALLOWED_CONSUMER, version.ref.name, actor="demo")
            return reg.release(version.ref, actor="demo")
    except RegistryError as e:
        print(f"lockgate demo: registry: {e}", file=sys.stderr)
        return None


def _cascade(out: Path, key: Path, url: str) -> int:
    """Step 4: train, gate, register and release UPSTREAM, then DOWNSTREAM on ``--upstream UPSTREAM:1``;
    attribute DOWNSTREAM's error to the two stages on the labelled table."""
    from safety.cli import main as check_main
    from training.analysis_cli import main as analyze_main
    from training.cli import main as train_main
    from training.synthetic import write_cascade_tables

    _step(f"4/5 a cascade: {UPSTREAM} -> {DOWNSTREAM} (lockgate train --upstream {UPSTREAM}:1)")
    tables = write_cascade_tables(out / "cascade")
    print(f"generated tables in {out / 'cascade'} (see training/synthetic.py)")
    runs = [
        (UPSTREAM, ["--data", str(tables["a"]), "--target", "risky", "--model", "hist_gradient_boosting"]),
        (DOWNSTREAM, ["--data", str(tables["b"]), "--target", "default", "--model", "logistic_regression",
                      "--upstream", f"{UPSTREAM}:1", "--registry-url", url]),
    ]
    for name, options in runs:
        common = ["--out", str(out), "--name", name, "--version", "1", "--overwrite", "--trials", "2",
                  "--calibration-cv", "0"]
        bundle = out / f"{name}-1"
        code = train_main([*options, *common]) or check_main([str(bundle), "--sign-key", str(key)])
        if code:
            print(f"lockgate demo: {name} was not trained or gated; see above", file=sys.stderr)
            return code
        # the consumer is declared for the downstream model only: the gateway composes the upstream itself
        released = _publish(url, bundle, declare=name == DOWNSTREAM)
        if released is None:
            return 2
        print(f"registered and released {released.ref} (sha256 {released.onnx_sha256[:12]}…)")
    analyze = [f"{DOWNSTREAM}:1", "--data", str(tables["labelled"]), "--upstream-truth", f"{UPSTREAM}=risky",
               "--registry-url", url, "--out", str(out / "cascade" / "analysis")]
    print(f"\nerror attribution by stage (lockgate analyze {' '.join(analyze)}):")
    return analyze_main(analyze)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
