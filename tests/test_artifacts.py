"""The shared bundle schema: identities, atomic writes, and clear errors for broken bundles."""

from pathlib import Path

import pytest

from cascade_registry.artifacts import (
    FeatureSpec,
    InvalidBundleError,
    ModelBundle,
    ModelCard,
    ModelRef,
    UpstreamRef,
    atomic_directory,
    upstream_feature_names,
    write_json_atomic,
)


def test_model_ref_parses_and_prints():
    ref = ModelRef.parse("churn:3")
    assert (ref.name, ref.version, str(ref), ref.dirname) == ("churn", 3, "churn:3", "churn-3")


@pytest.mark.parametrize("text", ["churn", "churn:", "churn:x", "Churn:1", "churn:0", ":1"])
def test_model_ref_rejects_malformed(text):
    with pytest.raises(ValueError):
        ModelRef.parse(text)


def test_atomic_directory_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "m-1"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "model.onnx").write_bytes(b"x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_refuses_existing_unless_overwrite(tmp_path: Path):
    target = tmp_path / "m-1"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError), atomic_directory(target):
        pass
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["m-1"]


def test_write_json_atomic(tmp_path: Path):
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda p: None, "has no card.json"),
        (lambda p: (p / "card.json").write_text("{not json"), "not readable JSON"),
        (lambda p: (p / "card.json").write_text('{"schema_version": "1"}'), "does not match the card schema"),
    ],
)
def test_load_broken_bundle_says_what_is_wrong(tmp_path: Path, setup, expected):
    setup(tmp_path)
    with pytest.raises(InvalidBundleError, match=expected):
        ModelBundle.load(tmp_path)


def test_load_missing_directory(tmp_path: Path):
    with pytest.raises(InvalidBundleError, match="is not a directory"):
        ModelBundle.load(tmp_path / "nope")


def test_cascade_card_fields_default_so_old_cards_load():
    old = UpstreamRef.model_validate({"name": "a", "version": 1, "feature": "score"})
    assert (old.onnx_sha256, old.output, old.features, old.inputs) == (None, "probabilities", [], [])
    assert FeatureSpec.model_validate({"name": "x"}).upstream is None
    assert not ModelCard.model_fields["train_options"].is_required()


def test_upstream_feature_names_follow_the_contract():
    assert upstream_feature_names("a", ["no", "yes"], "probabilities") == ["a__p_yes"]
    assert upstream_feature_names("a", ["x", "y", "z"], "probabilities") == ["a__p_x", "a__p_y", "a__p_z"]
    assert upstream_feature_names("a", ["x", "y", "z"], "label") == ["a__label"]
