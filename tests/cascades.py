"""A real two-model cascade on the Palmer penguins table (it ships inside the ``palmerpenguins`` package).

``a`` predicts a penguin's sex from its island and four measurements; ``b`` predicts the species from the
raw columns (``year`` plus all of a's inputs) and ``a__p_male``, a's calibrated probability of the positive
class, computed by running a's ONNX graph with ONNX Runtime on the training rows (the cascade contract:
numeric columns in the float32 ``input`` tensor, categorical ones in the string ``categorical`` tensor,
missing = NaN / ""). Both are trained by the real training code; b's card then gets the contract's
cascade fields (``UpstreamRef`` with features, inputs and sha256; ``FeatureSpec.upstream``), as
``lockgate train --upstream`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from cascade_registry.artifacts import CARD_FILE, ModelBundle, UpstreamRef, write_json_atomic

__all__ = ["A_INPUTS", "B_RAW", "penguins", "run_onnx", "train_a", "train_b"]

A_INPUTS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
#: b's raw columns, in its table's order (year first, so a's inputs sit at other positions in b)
B_RAW = ["year", *A_INPUTS]


def penguins() -> pd.DataFrame:
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    return frame.dropna(subset=["sex"]).reset_index(drop=True)


def run_onnx(bundle: Path, frame: pd.DataFrame) -> np.ndarray:
    """The bundle's calibrated probabilities on ``frame`` (columns by name), straight from ONNX Runtime."""
    card = ModelBundle.load(bundle).card
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"input": frame[[f.name for f in card.numeric_features]].to_numpy(np.float32)}
    categorical = [f.name for f in card.categorical_features]
    if categorical:
        feeds["categorical"] = frame[categorical].fillna("").astype(str).to_numpy(object)
    return session.run(["probabilities"], feeds)[0]


def _train(
    out: Path, csv: Path, name: str, version: int, seed: int, target: str, drop: tuple[str, ...]
) -> Path:
    from training import TrainConfig, train

    return train(
        TrainConfig(
            data=str(csv),
            target=target,
            drop=drop,
            model="logistic_regression",
            calibration="sigmoid",
            calibration_cv=0,
            trials=1,
            seed=seed,
            name=name,
            version=version,
            out=out,
            progress=False,
        )
    )


def train_a(out: Path, version: int, seed: int) -> Path:
    csv = out / f"a-{version}.csv"
    penguins().to_csv(csv, index=False)
    return _train(out, csv, "a", version, seed, "sex", ("species", "year"))


def train_b(
    out: Path, upstream: Path, name: str = "b", version: int = 1, edge: str = "declared", seed: int = 0
) -> Path:
    """A model on b's raw columns + ``a__p_male`` computed by ``upstream``'s graph. ``edge``: ``declared``
    writes the card's cascade fields (a composed model: callers send the raw columns only);
    ``undeclared`` marks the feature as a's output but declares no edge (refused by the gateway);
    ``plain`` writes none (callers send ``a__p_male`` themselves, as after calling a)."""
    frame = penguins()
    a = ModelBundle.load(upstream)
    feature = f"{a.card.ref.name}__p_{a.card.classes[1]}"
    table = frame[[*B_RAW, "species"]].copy()
    table.insert(len(B_RAW), feature, run_onnx(upstream, frame)[:, 1])
    csv = out / f"{name}-{version}.csv"
    table.to_csv(csv, index=False)
    bundle = _train(out, csv, name, version, seed, "species", ())
    if edge == "plain":
        return bundle
    card = ModelBundle.load(bundle).card
    features = [f.model_copy(update={"upstream": "a"}) if f.name == feature else f for f in card.features]
    ref = UpstreamRef(
        name=a.card.ref.name,
        version=a.card.ref.version,
        onnx_sha256=a.onnx_sha256,
        output="probabilities",
        features=[feature],
        inputs=a.card.feature_names,
    )
    update = {"features": features, "upstream": [ref] if edge == "declared" else []}
    write_json_atomic(bundle / CARD_FILE, card.model_copy(update=update))
    return bundle
