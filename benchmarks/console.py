"""Console render times on a registry of 1,000 models and 5,000 versions (target: every page < 200 ms).

    .venv/bin/python benchmarks/console.py [--url URL] [--models 1000] [--versions 5] [--repeats 5]

One real bundle (tiny ONNX graph, card, reliability diagram, signed verdict) is registered through
``Registry.register``; the other versions are its row copied straight into the tables with their own name,
version and sha256, 50 services declare 20 models each, and models are chained ten by ten by card pins.
Each page is requested in-process (Starlette's test client) after one warm-up; the median of ``repeats``
is printed with its ratio to ``/healthz`` measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cascade_registry import Registry  # noqa: E402
from cascade_registry.schema import consumers, declarations, model_versions  # noqa: E402
from console import ConsoleSettings, create_app  # noqa: E402
from tests.bundles import open_trusting  # noqa: E402
from tests.console.conftest import make_bundle  # noqa: E402

TARGET_MS = 200.0


def build(url: str, root: Path, models: int, versions: int) -> None:
    with open_trusting(url) as reg:
        reg.register(make_bundle(root, "m0000", 1), actor="bench")
        reg.release("m0000:1", actor="bench")
        template = reg.store.db.read(lambda c: c.execute(select(model_versions)).first()._asdict())
        card = template["card_json"]

        def write(conn) -> None:
            rows = []
            for i in range(models):
                name = f"m{i:04d}"
                for v in range(1, versions + 1):
                    if (i, v) == (0, 1):
                        continue
                    row = {k: val for k, val in template.items() if k != "id"}
                    row.update(
                        name=name,
                        version=v,
                        status="released" if v == versions else "superseded",
                        onnx_sha256=hashlib.sha256(f"{name}:{v}".encode()).hexdigest(),
                        card_json=card.replace('"name": "m0000"', f'"name": "{name}"').replace(
                            '"version": 1', f'"version": {v}'
                        ),
                    )
                    rows.append(row)
            conn.execute(insert(model_versions), rows)
            at = template["registered_at"]
            people = [f"svc{j:02d}" for j in range(50)] + [f"m{i:04d}" for i in range(models)]
            conn.execute(
                insert(consumers),
                [
                    {
                        "name": n,
                        "kind": "service" if n.startswith("svc") else "model",
                        "owner": "bench",
                        "created_at": at,
                        "created_by": "bench",
                    }
                    for n in people
                ],
            )
            ids = dict(conn.execute(select(consumers.c.name, consumers.c.id)).all())
            decl = [
                {
                    "consumer_id": ids[f"svc{j:02d}"],
                    "model_name": f"m{(j * 20 + k) % models:04d}",
                    "versions": None,
                    "source": "manual",
                    "consumer_version": 0,
                    "created_at": at,
                    "created_by": "bench",
                }
                for j in range(50)
                for k in range(20)
            ]
            decl += [
                {
                    "consumer_id": ids[f"m{i:04d}"],
                    "model_name": f"m{i - 1:04d}",
                    "versions": f"=={versions}",
                    "source": "card",
                    "consumer_version": versions,
                    "pinned_version": versions,
                    "created_at": at,
                    "created_by": "bench",
                }
                for i in range(1, models)
                if i % 10
            ]
            conn.execute(insert(declarations), decl)

        reg.store.db.write(write)


def timed(client: TestClient, path: str, repeats: int, bump=None) -> float:
    """Median ms of ``path``; with ``bump`` (a registry write before each request) every request misses
    the console's per-generation cache: the cold figure."""
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    times = []
    for _ in range(repeats):
        if bump is not None:
            bump()
        t = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url")
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--versions", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/registry.db"
        started = time.perf_counter()
        build(url, Path(tmp) / "bundles", args.models, args.versions)
        with Registry.open(url) as reg:
            total = len(reg.summaries())
            print(
                f"registry: {total} models, {args.models * args.versions} versions "
                f"(built in {time.perf_counter() - started:.1f} s) at {reg.url}"
            )
        app = create_app(ConsoleSettings(registry_url=url, secret="bench"))
        mid = f"m{args.models // 2:04d}"
        pages = [
            "/healthz",
            "/",
            f"/?q={mid[:3]}",
            "/?page=5",
            f"/models/{mid}",
            "/models/m0000/1",
            f"/models/{mid}/3",
            "/models/m0000/1/files/reliability.png",
            "/consumers",
            "/audit",
            f"/cascade?focus={mid}",
            "/cascade",
        ]
        worst = 0.0
        writer = Registry.open(url)
        bump = lambda: writer.store.db.write(lambda conn: None)  # noqa: E731 - bumps the generation
        with TestClient(app) as client:
            base = timed(client, "/healthz", args.repeats)
            print(f"{'page':44s} {'warm ms':>8s} {'cold ms':>8s} {'cold x healthz':>15s}")
            for page in pages:
                warm = timed(client, page, args.repeats)
                cold = timed(client, page, args.repeats, bump)
                if page != "/healthz":
                    worst = max(worst, cold)
                print(f"{page:44s} {warm:8.1f} {cold:8.1f} {cold / base:15.1f}")
        writer.close()
        app.state.console.close()
    verdict = "OK" if worst < TARGET_MS else "SLOW"
    print(f"slowest page {worst:.1f} ms (target < {TARGET_MS:.0f} ms): {verdict}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
