"""``card.inputs``: an image or sequence record fits its columns and names numeric features of the card."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cascade_registry.artifacts import InputSpec, ModelBundle

IMAGE = {"kind": "image", "shape": [2, 2, 1], "value_range": [0, 1]}
SEQUENCE = {"kind": "sequence", "columns": ["a", "b"], "max_length": 2, "vocabulary": ["x"]}


@pytest.mark.parametrize(("spec", "why"), [
    ({**IMAGE, "columns": ["a", "b", "c"]}, "must hold its 3"),
    ({**IMAGE, "columns": ["a", "b", "c", "d"], "value_range": [1, 1]}, "low < high"),
    ({**IMAGE, "columns": ["a"] * 8192, "shape": [64, 128, 1]}, "at most 4096"),
    ({**SEQUENCE, "max_length": 3}, "must equal its 2"),
    ({**SEQUENCE, "vocabulary": ["x", "x"]}, "each token once"),
])
def test_input_spec_must_fit_its_columns(spec: dict, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        InputSpec(name="x", **spec)


def test_card_inputs_name_numeric_features(trained_demo: Path) -> None:
    card = ModelBundle.read_card(trained_demo)
    names = card.feature_names[:4]
    image = {"name": "image", "kind": "image", "columns": names, "shape": [2, 2, 1], "value_range": [0, 50]}
    assert card.model_copy(update={"inputs": [InputSpec(**image)]}).inputs[0].width == 4
    raw = card.model_dump(mode="json")
    with pytest.raises(ValidationError, match="must be numeric features"):
        type(card).model_validate({**raw, "inputs": [{**image, "columns": [*names[:3], "nope"]}]})
    with pytest.raises(ValidationError, match="each in one input"):
        type(card).model_validate({**raw, "inputs": [image, {**image, "name": "again"}]})
