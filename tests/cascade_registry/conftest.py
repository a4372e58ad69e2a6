"""Fixtures for the registry tests: tiny but valid bundles (a real ONNX softmax-regression graph, a full
ModelCard, an optional GateReport) and a registry URL on both backends (a SQLite file, and a fresh schema
on the real PostgreSQL server that is dropped afterwards). The PostgreSQL tests never skip: an
unreachable server fails them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sqlalchemy import create_engine, text

from cascade_registry.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    CalibrationInfo,
    CalibrationMetrics,
    CostInfo,
    DatasetInfo,
    ExportInfo,
    FeatureSpec,
    InfrastructureInfo,
    ModelCard,
    ModelRef,
    RuntimeInfo,
    SearchInfo,
    SplitInfo,
    TestMetrics,
    UpstreamRef,
    sha256_file,
    write_json_atomic,
)
from tests.bundles import open_trusting, write_attestation

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
N_FEATURES = 3
CLASSES = ["no", "yes"]


def write_onnx(path: Path, seed: int) -> None:
    """A real ONNX graph: probabilities = softmax(x W + b), label = argmax; weights depend on ``seed``."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(N_FEATURES, len(CLASSES))).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.normal(size=(len(CLASSES),)).astype(np.float32), "B")
    nodes = [
        helper.make_node("MatMul", ["input", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", N_FEATURES])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(CLASSES)]),
        ],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def make_card(ref: ModelRef, sha: str, upstream: list[UpstreamRef]) -> ModelCard:
    cal = CalibrationMetrics(ece=0.03, mce=0.08, brier=0.1, log_loss=0.3, bins=10)
    split = SplitInfo(rows=50, sha256="0" * 64, class_counts={"no": 25, "yes": 25})
    return ModelCard(
        ref=ref,
        task="binary",
        family="softmax_regression",
        classes=CLASSES,
        features=[FeatureSpec(name=f"f{i}", min=-3.0, max=3.0, mean=0.0, std=1.0) for i in range(N_FEATURES)],
        dataset=DatasetInfo(
            name="synthetic",
            description="test fixture",
            source="synthetic:normal",
            rows=200,
            n_features=N_FEATURES,
            sha256="1" * 64,
            splits={"train": split, "validation": split, "calibration": split, "test": split},
            splits_disjoint=True,
        ),
        hyperparameters={"C": 1.0},
        search=SearchInfo(
            method="fixed",
            metric="f1_macro",
            metric_definition="macro F1",
            selection="only candidate",
            trials=1,
            ranges={"C": [1.0]},
            defaults={"C": 1.0},
            best_params={"C": 1.0},
            best_value=0.9,
            candidates=[],
        ),
        calibration=CalibrationInfo(
            method="none", requested="none", reason="fixture", holdout_rows=50, before=cal, after=cal
        ),
        metrics=TestMetrics(
            rows=50,
            accuracy=0.9,
            f1_macro=0.9,
            precision_macro=0.9,
            recall_macro=0.9,
            cohen_kappa=0.8,
            log_loss=0.3,
            brier=0.1,
            ece=0.03,
            mce=0.08,
            bins=10,
            per_class={},
            confusion_matrix=[[23, 2], [3, 22]],
        ),
        recommended_threshold=0.5,
        export=ExportInfo(
            onnx_sha256=sha,
            opset={"": 17},
            parity_max_abs_diff=0.0,
            parity_rows=10,
            precision="float32",
            converter="onnx.helper",
        ),
        infrastructure=InfrastructureInfo(
            cpu_model="test", cores=1, ram_gb=1.0, os="linux", python="3.11", libraries={}
        ),
        runtime=RuntimeInfo(
            total_seconds=0.1,
            search_seconds=0.1,
            per_candidate_seconds=[0.1],
            calibration_seconds=0.0,
            export_seconds=0.0,
        ),
        cost=CostInfo(price_per_core_hour=0.05, core_hours=0.0, estimated_cost=0.0),
        seed=0,
        upstream=upstream,
        how_to_consume="POST /predict",
        created_at=datetime.now(UTC),
    )


def write_gate(bundle: Path, ref: ModelRef, sha: str, passed: bool) -> None:
    """A verdict signed by the session's test key over the bundle's files (``sha`` is model.onnx's)."""
    assert sha256_file(bundle / MODEL_FILE) == sha
    write_attestation(bundle, ref, passed)


BundleFactory = Callable[..., Path]


@pytest.fixture(name="write_gate")
def write_gate_fixture() -> Callable[[Path, ModelRef, str, bool], None]:
    """``write_gate(bundle, ref, sha256, passed)``: (re)write the bundle's gate.json."""
    return write_gate


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleFactory:
    """``make_bundle("a", 1, upstream=["b:2"], gate="pass"|"fail"|None) -> bundle dir``."""

    def make(
        name: str,
        version: int,
        upstream: tuple[str, ...] | list[str] = (),
        gate: str | None = "pass",
        root: Path | None = None,
    ) -> Path:
        ref = ModelRef(name=name, version=version)
        bundle = (root or tmp_path / "bundles") / ref.dirname
        bundle.mkdir(parents=True)
        seed = int.from_bytes(hashlib.sha256(f"{bundle}".encode()).digest()[:4], "big")
        write_onnx(bundle / MODEL_FILE, seed)
        sha = sha256_file(bundle / MODEL_FILE)
        ups = [UpstreamRef(name=u.split(":")[0], version=int(u.split(":")[1])) for u in upstream]
        write_json_atomic(bundle / CARD_FILE, make_card(ref, sha, ups))
        if gate is not None:
            write_gate(bundle, ref, sha, gate == "pass")
        return bundle

    return make


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL; fails (never skips) when it cannot be reached."""
    engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - turn any connection problem into a clear failure
        pytest.fail(
            f"PostgreSQL at {PG_SERVER} is unreachable ({type(e).__name__}); the registry tests need it"
        )
    finally:
        engine.dispose()
    return PG_SERVER


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards; the URL sets it as search_path."""
    schema = f"lgtest_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_server)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{pg_server}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on a SQLite file and on a fresh PostgreSQL schema; nothing created yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def registry_url(fresh_registry_url: str) -> str:
    """:func:`fresh_registry_url`, created and trusting the session's gate key (``trust.add`` is its one
    audit entry, by actor ``tests``: see :func:`changes`)."""
    open_trusting(fresh_registry_url).close()
    return fresh_registry_url


def changes(registry) -> list:
    """The audit log without the test set-up's ``trust.add`` entry."""
    return [e for e in registry.audit() if e.action != "trust.add"]


@pytest.fixture
def registry(registry_url: str) -> Iterator:
    from cascade_registry import Registry

    reg = Registry.open(registry_url)
    yield reg
    reg.close()
