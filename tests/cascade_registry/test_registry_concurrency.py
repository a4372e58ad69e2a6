"""8 processes registering, declaring and releasing at once, on both backends: no lost update (the
generation counter equals the number of successful writes), no duplicate version, no lock error."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections import Counter
from pathlib import Path

from cascade_registry import ConflictError, Registry

WORKERS = 8


def _work(url: str, i: int, bundles: dict[str, str], barrier, queue) -> None:
    writes, outcome = 0, Counter()
    try:
        reg = Registry.open(url)
        barrier.wait(timeout=60)
        for key in (f"own-{i}", f"shared-{i}", f"race-{i}"):
            try:
                reg.register(bundles[key], actor=f"w{i}")
                writes += 1
                outcome[f"{key.split('-')[0]}:ok"] += 1
            except ConflictError:
                outcome[f"{key.split('-')[0]}:conflict"] += 1
        reg.add_consumer(f"svc{i}", owner=f"w{i}", actor=f"w{i}")
        reg.declare(f"svc{i}", f"m{i}", actor=f"w{i}")
        reg.declare(f"svc{i}", "base", versions=">=1", actor=f"w{i}")
        reg.release(f"m{i}:1", actor=f"w{i}")
        reg.release(f"hot:{i + 1}", actor=f"w{i}")
        writes += 5
        reg.close()
        queue.put((i, writes, dict(outcome), None))
    except Exception:  # noqa: BLE001 - report everything to the parent, which fails the test
        queue.put((i, writes, dict(outcome), traceback.format_exc()))


def test_eight_writers_at_once(registry_url: str, make_bundle, tmp_path: Path) -> None:
    reg = Registry.open(registry_url)
    reg.register(make_bundle("base", 1))
    for v in range(1, WORKERS + 1):
        reg.register(make_bundle("hot", v))
    bundles: dict[str, str] = {}
    for i in range(WORKERS):
        bundles[f"own-{i}"] = str(make_bundle(f"m{i}", 1))
        bundles[f"shared-{i}"] = str(make_bundle("shared", 1, root=tmp_path / f"s{i}"))  # same name:version
        bundles[f"race-{i}"] = str(make_bundle("race", i % 4 + 1, root=tmp_path / f"r{i}"))
    start = reg.generation()
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=_work, args=(registry_url, i, bundles, barrier, queue)) for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [tb for *_, tb in results if tb]
    assert not errors, errors[0]
    outcome = sum((Counter(o) for _, _, o, _ in results), Counter())
    assert outcome == Counter(
        {"own:ok": 8, "shared:ok": 1, "shared:conflict": 7, "race:ok": 4, "race:conflict": 4}
    )
    writes = sum(w for _, w, _, _ in results)
    assert reg.generation() - start == writes  # every write counted once: nothing lost
    assert [v.ref.version for v in reg.versions("race")] == [1, 2, 3, 4]
    assert len(reg.versions("shared")) == 1
    hot = Counter(v.status for v in reg.versions("hot"))
    assert hot == Counter({"released": 1, "superseded": 7})
    assert {c.name for c in reg.consumers()} == {f"svc{i}" for i in range(WORKERS)}
    assert len(reg.declarations(model_name="base")) == WORKERS
    assert len(reg.released()) == WORKERS + 1  # m0..m7 and one hot
    actions = Counter(e.action for e in reg.audit())
    assert actions["release"] == 16 and actions["supersede"] == 7 and actions["declare"] == 16
    reg.close()


def _open_and_write(url: str, i: int, barrier, queue) -> None:
    try:
        barrier.wait(timeout=60)
        with Registry.open(url) as reg:
            reg.add_consumer(f"c{i}", owner="o")
        queue.put(None)
    except Exception:  # noqa: BLE001
        queue.put(traceback.format_exc())


def test_eight_processes_create_and_migrate_a_fresh_registry_at_once(fresh_registry_url: str) -> None:
    registry_url = fresh_registry_url
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=_open_and_write, args=(registry_url, i, barrier, queue)) for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    errors = [e for e in (queue.get(timeout=120) for _ in procs) if e]
    for p in procs:
        p.join(timeout=30)
    assert not errors, errors[0]
    with Registry.open(registry_url) as reg:
        assert len(reg.consumers()) == WORKERS and reg.generation() == WORKERS
