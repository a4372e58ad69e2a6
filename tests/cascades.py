"""A small real cascade for tests, built with the training API and ONNX Runtime (no mocks).

``up`` (an RBF support vector machine on ``x0, x1``) learns ``t = x0 * x1 > 0``, which a linear model
cannot; ``scorer`` (logistic regression on ``x0, x1, x2`` and ``up__p_yes``) learns ``y`` (= ``t``,
flipped where ``x2 > 1.5``), so it leans on ``up``'s output. ``up``'s probabilities are computed by
running its ``model.onnx`` with ONNX Runtime, and the scorer's card carries the cascade contract's
fields (``UpstreamRef.features``, ``inputs``, ``onnx_sha256``, ``output``; ``FeatureSpec.upstream``),
written the way ``lockgate train --upstream`` will. Variants of ``up``: ``up:2`` another seed of the same
model (a compatible upstream), ``up:3`` trained on the opposite target (an incompatible one). The scorer
goes through the real gate; the upstreams get a signed passing verdict written by hand
(:func:`tests.bundles.write_attestation`): what is tested downstream is the scorer's gate, and each gate
run costs seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE, ModelCard, UpstreamRef, sha256_file
from tests.bundles import gate_bundle, write_attestation

ROWS = 600
UPSTREAM_FEATURE = "up__p_yes"
UPSTREAM_MODEL = "svm"


def cascade_table(seed: int = 0) -> pd.DataFrame:
    """x0, x1, x2 and the targets t (up's) and y (the scorer's); rows near up's boundary left out."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS * 2, 3))
    x = x[np.abs(x[:, 0] * x[:, 1]) > 0.15][:ROWS]
    t = x[:, 0] * x[:, 1] > 0
    y = np.where(x[:, 2] > 1.5, ~t, t)
    yes_no = np.array(["no", "yes"])
    return pd.DataFrame(
        {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "t": yes_no[t.astype(int)], "y": yes_no[y.astype(int)]}
    )


def upstream_probability(bundle: Path, table: pd.DataFrame) -> np.ndarray:
    """P(yes) of the upstream bundle's ONNX graph on ``table``'s x0, x1."""
    session = ort.InferenceSession(str(bundle / MODEL_FILE), providers=["CPUExecutionProvider"])
    x = table[["x0", "x1"]].to_numpy(np.float32)
    return session.run(["probabilities"], {"input": x})[0][:, 1]


def _train(root: Path, csv: Path, name: str, version: int, seed: int, target: str, drop: tuple, model: str):
    from training import TrainConfig, train

    return train(
        TrainConfig(
            data=str(csv),
            target=target,
            drop=drop,
            model=model,
            calibration="sigmoid",
            calibration_cv=0,
            trials=1,
            seed=seed,
            name=name,
            version=version,
            out=root,
            progress=False,
        )
    )


def train_upstream(root: Path, version: int, seed: int, opposite: bool = False) -> Path:
    table = cascade_table()
    if opposite:
        table = table.assign(t=np.where(table["t"] == "yes", "no", "yes"))
    csv = root / f"up-{version}.csv"
    table[["x0", "x1", "t"]].to_csv(csv, index=False)
    bundle = _train(root, csv, "up", version, seed, "t", (), UPSTREAM_MODEL)
    write_attestation(bundle, ModelCard.model_validate_json((bundle / CARD_FILE).read_text()).ref)
    return bundle


def train_scorer(root: Path, upstream: Path, version: int = 1) -> Path:
    """The downstream model trained on ``upstream``'s ONNX outputs, with the cascade fields on its card."""
    table = cascade_table()
    table[UPSTREAM_FEATURE] = upstream_probability(upstream, table)
    csv = root / f"scorer-{version}.csv"
    table[["x0", "x1", "x2", UPSTREAM_FEATURE, "y"]].to_csv(csv, index=False)
    bundle = _train(root, csv, "scorer", version, 0, "y", (), "logistic_regression")
    up_card = ModelCard.model_validate_json((upstream / CARD_FILE).read_text())
    card = json.loads((bundle / CARD_FILE).read_text())
    for f in card["features"]:
        if f["name"] == UPSTREAM_FEATURE:
            f["upstream"] = "up"
    card["upstream"] = [
        UpstreamRef(
            name="up",
            version=up_card.ref.version,
            onnx_sha256=sha256_file(upstream / MODEL_FILE),
            output="probabilities",
            features=[UPSTREAM_FEATURE],
            inputs=["x0", "x1"],
        ).model_dump(mode="json")
    ]
    (bundle / CARD_FILE).write_text(json.dumps(card))
    gate_bundle(bundle)
    return bundle
