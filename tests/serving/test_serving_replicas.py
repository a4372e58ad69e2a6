"""Scaling out: two gateway processes on different ports share one registry on the real PostgreSQL server.

A declaration, a revoked key and a release made once are enforced by both replicas within seconds.
The registry lives in a fresh schema that is dropped afterwards. Never skipped: PostgreSQL must be up.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.bundles import open_trusting

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = f"lgserve_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 5})
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def status(gw, key: str, rows: list) -> tuple[int, int | None]:
    r = httpx.post(
        gw.url + "/predict",
        json={"model": "demo", "inputs": rows},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return r.status_code, (r.json()["model"]["version"] if r.status_code == 200 else None)


def both_within(
    gateways, key: str, rows: list, expected: tuple[int, int | None], timeout: float = 15.0
) -> float:
    """Seconds until every replica answers ``expected`` (status, version)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if all(status(gw, key, rows) == expected for gw in gateways):
            return time.monotonic() - start
        time.sleep(0.1)
    seen = [status(gw, key, rows) for gw in gateways]
    raise AssertionError(f"not every replica answered {expected}: {seen}")


def test_two_replicas_enforce_one_registry_change_within_seconds(
    pg_url, start_gateway, demo_bundle, demo_bundle_v2, rows, tmp_path: Path
):
    one = rows[:1]
    reg = open_trusting(pg_url)
    try:
        reg.register(shutil.copytree(demo_bundle, tmp_path / "demo-1"))
        reg.release("demo:1")
        reg.add_consumer("billing", owner="team-billing")
        key = reg.issue_key("billing")

        replicas = [start_gateway("--registry-url", pg_url, ready_path="/readyz") for _ in range(2)]
        assert replicas[0].port != replicas[1].port
        both_within(replicas, key, one, (403, None))

        reg.declare("billing", "demo")
        assert both_within(replicas, key, one, (200, 1)) < 8

        reg.register(shutil.copytree(demo_bundle_v2, tmp_path / "demo-2"))
        reg.release("demo:2")
        assert both_within(replicas, key, one, (200, 2)) < 8

        reg.revoke_key("billing")
        assert both_within(replicas, key, one, (401, None)) < 8
    finally:
        reg.close()
