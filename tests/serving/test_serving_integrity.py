"""Serve what was checked (issue 12, finding 2): the gateway loads a released bundle only when its files
are the ones the registry stored at register time, serves the stored card, and refuses a tampered bundle
alone: logged, counted, named in /readyz without any file-system path."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from cascade_registry.artifacts import ModelRef
from serving import ServeSettings
from serving.catalog import Catalog, RegistrySource, build_catalog
from tests.bundles import open_trusting, write_attestation


def _load(source: RegistrySource):
    return build_catalog(
        source.releases(), Catalog(), ServeSettings(batching=False), canary=False, make_batcher=lambda p: None
    )


def _failures(model: str) -> float:
    return REGISTRY.get_sample_value("lockgate_bundle_integrity_failures_total", {"model": model}) or 0.0


def _released(tmp_path: Path, demo_bundle: Path):
    reg = open_trusting(f"sqlite:///{tmp_path / 'registry.db'}")
    demo = shutil.copytree(demo_bundle, tmp_path / "bundles" / "demo-1")
    reg.register(demo)
    reg.release("demo:1")
    return reg, demo


def test_a_card_changed_after_release_is_refused(tmp_path, demo_bundle):
    reg, demo = _released(tmp_path, demo_bundle)
    try:
        assert list(_load(RegistrySource(reg)).models) == ["demo"]
        card = json.loads((demo / "card.json").read_text())
        card["classes"] = card["classes"][::-1]  # swapped labels in every answer, if it were served
        (demo / "card.json").write_text(json.dumps(card))
        before = _failures("demo")
        catalog = _load(RegistrySource(reg))
        assert catalog.models == {} and list(catalog.missing) == ["demo:1"]
        why = catalog.missing["demo:1"]
        assert "card.json changed" in why and str(tmp_path) not in why and "/" not in why.split(":", 2)[-1]
        assert _failures("demo") == before + 1
    finally:
        reg.close()


def test_the_stored_card_is_served(tmp_path, demo_bundle):
    reg, _ = _released(tmp_path, demo_bundle)
    try:
        slot = _load(RegistrySource(reg)).models["demo"]
        assert slot.predictor.card == reg.get("demo:1").card
    finally:
        reg.close()


def test_the_gateway_names_a_tampered_bundle_in_readyz_and_serves_the_others(
    tmp_path, demo_bundle, demo_bundle_v2, start_gateway
):
    reg, _ = _released(tmp_path, demo_bundle)
    try:
        renamed = shutil.copytree(demo_bundle_v2, tmp_path / "bundles" / "other-1")
        card = json.loads((renamed / "card.json").read_text())
        card["ref"] = {"name": "other", "version": 1}
        (renamed / "card.json").write_text(json.dumps(card))
        write_attestation(renamed, ModelRef(name="other", version=1))
        reg.register(renamed)
        reg.release("other:1")
        (renamed / "extra.bin").write_bytes(b"\0" * 16)  # a file nobody checked
        gw = start_gateway("--registry-url", f"sqlite:///{tmp_path / 'registry.db'}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready = httpx.get(gw.url + "/readyz").json()
            if ready.get("serving") == ["demo:1"] and "other:1" in ready.get("missing", {}):
                break
            time.sleep(0.2)
        assert ready["serving"] == ["demo:1"], ready
        assert "extra.bin was added" in ready["missing"]["other:1"]
        assert str(tmp_path) not in json.dumps(ready)
        assert "lockgate_bundle_integrity_failures_total" in httpx.get(gw.url + "/metrics").text
    finally:
        reg.close()
