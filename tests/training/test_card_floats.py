"""The card records float32 column statistics as short decimals that read back as the same float32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cascade_registry.artifacts import ModelBundle
from serving.validation import RowValidator
from training.tables import float32_value


def test_float32_value_is_short_and_exact() -> None:
    noisy = float(np.float32(11.41))  # 11.40999984741211
    assert float32_value(noisy) == 11.41 and np.float32(float32_value(noisy)) == np.float32(noisy)
    assert float32_value(0.0) == 0.0 and float32_value(-1e-7) == float(str(np.float32(-1e-7)))


def test_card_statistics_carry_no_float32_noise(trained_demo: Path) -> None:
    card = json.loads((trained_demo / "card.json").read_text())
    for feature in card["features"]:
        for key in ("min", "max", "mean", "std"):
            value = feature[key]
            assert len(repr(value)) <= 16, (feature["name"], key, value)  # 11.41, not 11.40999984741211
            assert float32_value(value) == value


def test_rows_at_the_training_extremes_are_inside_the_range(trained_demo: Path) -> None:
    card = ModelBundle.read_card(trained_demo)
    validator = RowValidator(card, max_batch_rows=16)
    extremes = np.array([[f.min for f in card.features], [f.max for f in card.features]], dtype=np.float32)
    assert validator.warnings(extremes) is None
