"""Upstream models of a cascade: find them in the registry, run their released ONNX graph, and add their
outputs to a table as named features of the downstream model.

The upstream's graph is the exact ``model.onnx`` the registry recorded (its sha256 is checked against the
registry before it runs), fed by column name with the gateway's encoding: numeric columns in the float32
``input`` tensor (missing = NaN), categorical and boolean columns in the string ``categorical`` tensor
(missing = ``""``). So training, revalidation and serving see the same numbers.

Feature naming (:func:`cascade_registry.artifacts.upstream_feature_names`): ``probabilities`` gives one
numeric feature per class, ``a__p_<class>`` (binary: the positive class only); ``label`` gives one
categorical feature ``a__label`` whose levels are the upstream's classes. They come after the raw
features. Every input of the upstream must be a raw feature of the downstream table, so a caller of the
downstream model sends only its raw columns.

The downstream's splits are made on the raw table before the upstream features are added, so retraining
against another upstream version keeps exactly the same train/validation/calibration/test rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cascade_registry.artifacts import (
    MODEL_FILE,
    FeatureSpec,
    ModelCard,
    ModelRef,
    UpstreamRef,
    upstream_feature_names,
)
from cascade_registry.errors import NotFoundError, RegistryUnavailableError
from cascade_registry.registry import Registry
from cascade_registry.settings import locate_registry
from training.datasets import Dataset
from training.errors import ConfigError, DataError
from training.graph import onnx_predict
from training.splits import Split, Splits
from training.tables import ColumnKind

__all__ = [
    "OUTPUT_KINDS",
    "OutputKind",
    "Upstream",
    "add_upstream_features",
    "dataset_columns",
    "output_columns",
    "perfect_columns",
    "registry_url",
    "resolve_upstreams",
    "run_graph",
]

OutputKind = Literal["probabilities", "label"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("probabilities", "label")
#: an upstream model file larger than this is not read (lockgate graphs are KB to a few MB)
MAX_ONNX_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Upstream:
    """One upstream model, resolved: its registered card and the bytes of its verified ``model.onnx``."""

    ref: ModelRef
    card: ModelCard
    onnx_bytes: bytes
    onnx_sha256: str
    output: OutputKind

    @property
    def features(self) -> list[str]:
        """The downstream feature names this upstream feeds, in order."""
        return upstream_feature_names(self.ref.name, self.card.classes, self.output)

    @property
    def inputs(self) -> list[str]:
        """The upstream's own feature names (read from the downstream's rows by name)."""
        return self.card.feature_names

    def pin(self) -> UpstreamRef:
        """The card's record of this edge."""
        return UpstreamRef(name=self.ref.name, version=self.ref.version, onnx_sha256=self.onnx_sha256,
                           output=self.output, features=self.features, inputs=self.inputs)


# ------------------------------------------------------------------------------------------ registry
def registry_url(explicit: str | None) -> str:
    """Where upstream models are looked up: the one registry location rule (``--registry-url``, else
    ``LOCKGATE_REGISTRY_URL``, else ``./.lockgate/registry.db``); a malformed variable is a ConfigError."""
    try:
        return locate_registry(explicit).url
    except ValueError as e:  # a malformed LOCKGATE_REGISTRY_* variable
        raise ConfigError(f"the registry location is invalid: {str(e).splitlines()[0]}",
                          "fix LOCKGATE_REGISTRY_URL or pass --registry-url") from None


def resolve_upstreams(specs: Sequence[tuple[ModelRef, OutputKind]], registry_url: str,
                      released_only: bool = True) -> list[Upstream]:
    """Each ``(ref, output)`` looked up in the registry at ``registry_url`` (opened read-only: a registry
    that does not exist is an error, not created); with ``released_only`` (training) each must be released
    now. Raises :class:`DataError` / :class:`ConfigError`."""
    try:
        with Registry.open(registry_url, create=False) as registry:
            return [_resolve(registry, ref, output, released_only) for ref, output in specs]
    except RegistryUnavailableError as e:
        raise ConfigError(
            f"the upstream models are looked up in the registry, which cannot be opened: {e}",
            "pass --registry-url (or set LOCKGATE_REGISTRY_URL) naming the registry they were released in",
        ) from None


def effective_pins(card: ModelCard, registry_url: str) -> dict[str, int]:
    """Upstream name -> the version the gateway composes ``card.ref`` with: the registry's effective pin
    (moved by ``lockgate registry revalidate``) when the model is registered there, else the card's pin."""
    pins = {u.name: u.version for u in card.upstream}
    try:
        with Registry.open(registry_url, create=False) as registry:
            moved = registry.pins(card.ref)
    except (NotFoundError, RegistryUnavailableError):  # not registered (a bundle directory) or no registry
        return pins
    pins.update({p.upstream.name: p.upstream.version for p in moved if p.upstream.name in pins})
    return pins


def _resolve(registry: Registry, ref: ModelRef, output: OutputKind, released_only: bool) -> Upstream:
    try:
        info = registry.get(ref)
    except NotFoundError:
        raise DataError(
            f"upstream {ref} is not registered in the registry at {registry.url}",
            f"train, check, register and release it first ('lockgate registry register BUNDLE', "
            f"'lockgate registry release {ref}'), or name a registered version",
        ) from None
    if released_only and info.status != "released":
        raise DataError(
            f"upstream {ref} is {info.status}, not released: a downstream model trains only on a released "
            "upstream (the graph the gateway serves)",
            f"release it first ('lockgate registry release {ref}') or pass the released version of "
            f"{ref.name}",
        )
    if info.card.upstream:
        inner = ", ".join(f"{u.name}:{u.version}" for u in info.card.upstream)
        raise DataError(
            f"upstream {ref} consumes upstream models itself ({inner}); a cascade feeds a model from "
            "models of raw columns only (one stage deep)",
            f"train the downstream model on {inner} directly, or on a version of {ref.name} without "
            "upstreams",
        )
    data = _read_model(info.bundle_path, ref)
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.onnx_sha256:
        raise DataError(
            f"upstream {ref}'s {MODEL_FILE} (sha256 {digest[:12]}…) is not the file the registry recorded "
            f"({info.onnx_sha256[:12]}…)",
            "the bundle was changed after registration: restore it, or register and release a new version",
        )
    return Upstream(ref=ref, card=info.card, onnx_bytes=data, onnx_sha256=digest, output=output)


def _read_model(bundle_path: str, ref: ModelRef) -> bytes:
    path = Path(bundle_path) / MODEL_FILE
    try:
        if path.is_symlink() or not path.is_file():
            raise OSError("not a regular file")
        if path.stat().st_size > MAX_ONNX_BYTES:
            raise OSError(f"larger than {MAX_ONNX_BYTES // 2**20} MB")
        return path.read_bytes()
    except OSError as e:
        raise DataError(
            f"upstream {ref}'s {MODEL_FILE} cannot be read where it was registered ({e.strerror or e})",
            "restore the bundle directory the registry recorded",
        ) from None


# ------------------------------------------------------------------------------------------ graphs
def run_graph(onnx_bytes: bytes, card: ModelCard, columns: Mapping[str, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
    """``label`` int64 [N] and ``probabilities`` float64 [N, C] of a lockgate graph whose card is ``card``,
    on rows given by column name (numeric: float values, NaN = missing; categorical/boolean: strings,
    ``""`` = missing), encoded as the gateway encodes a request."""
    n = len(next(iter(columns.values()))) if columns else 0
    numeric = [np.asarray(columns[f.name], np.float64) for f in card.numeric_features]
    X = np.column_stack(numeric) if numeric else np.zeros((n, 0))
    cats = [np.asarray(columns[f.name]).astype(str) for f in card.categorical_features]
    C = np.column_stack(cats) if cats else None
    label, probs = onnx_predict(onnx_bytes, X.astype(np.float32), C)
    return np.asarray(label, np.int64), np.asarray(probs, np.float64)


def output_columns(up: Upstream, labels: np.ndarray, probs: np.ndarray
                   ) -> list[tuple[str, ColumnKind, np.ndarray]]:
    """The downstream columns fed by ``up``, from its graph's outputs: ``(name, kind, values)``."""
    if up.output == "label":
        return [(up.features[0], "categorical", np.asarray(up.card.classes, dtype=str)[labels])]
    kept = probs[:, 1:] if probs.shape[1] == 2 else probs
    # float32 values held in float64, as every numeric column of a Dataset
    kept = kept.astype(np.float32).astype(np.float64)
    return [(name, "numeric", kept[:, j]) for j, name in enumerate(up.features)]


def perfect_columns(up: Upstream, truth: np.ndarray) -> list[tuple[str, ColumnKind, np.ndarray]]:
    """The columns a perfect ``up`` would feed: the true class index ``truth`` as a one-hot probability
    row, or as the label."""
    probs = np.eye(len(up.card.classes))[truth]
    return output_columns(up, truth, probs)


# ------------------------------------------------------------------------------------------ tables
def dataset_columns(ds: Dataset) -> dict[str, np.ndarray]:
    """Each feature column of ``ds`` by name (numeric float64, categorical/boolean strings)."""
    out: dict[str, np.ndarray] = {}
    num = cat = 0
    for name, kind in zip(ds.feature_names, ds.column_kinds, strict=True):
        if kind == "numeric":
            out[name], num = ds.X[:, num], num + 1
        else:
            out[name], cat = ds.categorical[:, cat], cat + 1
    return out


#: how to make a table column read as the kind an upstream expects
_READ_AS = {"numeric": "--numeric {}", "categorical": "--categorical {}",
            "boolean": "write {} as true/false (or yes/no) values, as in its training table"}


def _check_inputs(ds: Dataset, upstreams: Sequence[Upstream], dropped: Sequence[str]) -> None:
    kinds = dict(zip(ds.feature_names, ds.column_kinds, strict=True))
    columns = dataset_columns(ds)
    for up in upstreams:
        for spec in up.card.features:
            _check_column(ds.name, kinds, columns, up, spec, dropped)
        taken = sorted(set(up.features) & set(kinds))
        if taken:
            raise DataError(f"the table already has columns named {taken}, the names of {up.ref}'s features",
                            "rename or --drop those columns")


def _check_column(table: str, kinds: Mapping[str, str], columns: Mapping[str, np.ndarray], up: Upstream,
                  spec: FeatureSpec, dropped: Sequence[str]) -> None:
    """One input column of ``up``: in the table, of its kind, without gaps the upstream refuses."""
    if spec.name in dropped:
        raise DataError(
            f"column {spec.name!r} is an input of upstream {up.ref} but --drop leaves it out",
            f"keep it: the downstream model reads {up.ref}'s inputs from its own raw columns",
        )
    if spec.name not in kinds:
        raise DataError(
            f"upstream {up.ref} needs the column {spec.name!r}, which is not a feature column of {table} "
            "(the table, less its target/segment/time columns)",
            f"add {up.ref}'s input columns to the table: {', '.join(up.inputs[:12])}",
        )
    if kinds[spec.name] != spec.kind:
        raise DataError(
            f"column {spec.name!r} is {spec.kind} for upstream {up.ref} but {kinds[spec.name]} in {table}",
            f"read it as {up.ref} does: {_READ_AS[spec.kind].format(spec.name)}",
        )
    gaps = int(np.isnan(columns[spec.name]).sum()) if spec.kind == "numeric" else 0
    if spec.missing == "error" and gaps:
        raise DataError(
            f"column {spec.name!r} has {gaps} missing values but upstream {up.ref} refuses missing values "
            "there (its graph does not impute them; the gateway refuses such rows)",
            "fill them in or drop those rows, or use an upstream version trained with missing values",
        )


def add_upstream_features(ds: Dataset, splits: Splits, upstreams: Sequence[Upstream],
                          dropped: Sequence[str] = ()) -> tuple[Dataset, Splits]:
    """``ds`` and its ``splits`` with each upstream's outputs (computed by its graph on every row) appended
    as features; the row hashes (and so the splits) stay those of the raw table."""
    _check_inputs(ds, upstreams, dropped)
    columns = dataset_columns(ds)
    added: list[tuple[str, ColumnKind, np.ndarray]] = []
    for up in upstreams:
        added += output_columns(up, *run_graph(up.onnx_bytes, up.card, columns))
    num = [v for _, k, v in added if k == "numeric"]
    cat = [v for _, k, v in added if k != "numeric"]
    X = np.column_stack([ds.X, *num]) if num else ds.X
    C = np.column_stack([ds.categorical, *cat]).astype(str) if cat else ds.C
    described = ", ".join(f"{u.ref} {u.output}" for u in upstreams)
    extended = dataclasses.replace(
        ds, X=X, C=C, feature_names=[*ds.feature_names, *(n for n, _, _ in added)],
        kinds=[*ds.column_kinds, *(k for _, k, _ in added)],
        description=f"{ds.description}; + {len(added)} features from upstream {described}",
    )
    return extended, dataclasses.replace(
        splits, train=_reread(splits.train, extended), validation=_reread(splits.validation, extended),
        calibration=_reread(splits.calibration, extended), test=_reread(splits.test, extended),
        older=_reread(splits.older, extended),
    )


def _reread(split: Split | None, ds: Dataset) -> Split | None:
    """``split``'s rows read again from ``ds`` by their row index (the row hashes stay as they were)."""
    if split is None:
        return None
    return dataclasses.replace(split, X=ds.X[split.index], C=None if ds.C is None else ds.C[split.index])
