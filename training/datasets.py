"""Load a labelled table: a scikit-learn bundled set, a seeded synthetic set, or a CSV file.

Features are returned as float64 holding float32-representable values: the exported model receives
float32, so training on exactly those values keeps native and ONNX predictions comparable bit for bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as skd

from training.errors import DataError

__all__ = ["BUILTIN_DATASETS", "MIN_CLASS_ROWS", "Dataset", "load_dataset"]

#: datasets that ship with scikit-learn or are generated (no downloads)
BUILTIN_DATASETS = ("breast_cancer", "wine", "digits", "imbalanced")
#: each class needs two rows in each of the (up to) four splits
MIN_CLASS_ROWS = 8


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    source: str
    X: np.ndarray  # float64 [n, F], float32-representable
    y: np.ndarray  # int64 [n], 0..C-1
    classes: list[str]
    feature_names: list[str]
    target: str | None = None
    segment_name: str | None = None
    segments: np.ndarray | None = None  # str [n]
    missing_values: str = "reject"
    notes: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        h.update("\x1f".join(self.classes).encode())
        h.update("\x1f".join(self.feature_names).encode())
        return h.hexdigest()


def load_dataset(
    data: str, seed: int = 0, target: str | None = None, segment: str | None = None, missing: str = "reject"
) -> Dataset:
    """The dataset named by ``data`` (builtin name or CSV path), validated."""
    if data in BUILTIN_DATASETS:
        if target or segment:
            raise DataError(
                f"--target/--segment apply to CSV files, not to the builtin dataset {data!r}",
                "drop them, or pass --data PATH.csv",
            )
        ds = _builtin(data, seed)
    else:
        ds = _csv(Path(data), target, segment)
    X = _finite_features(ds.X, ds.feature_names, missing)
    _check_classes(ds.y, ds.classes)
    how = "reject" if missing == "reject" else _impute_note(ds.X)
    return Dataset(
        name=ds.name,
        description=ds.description,
        source=ds.source,
        X=X.astype(np.float32).astype(np.float64),
        y=ds.y,
        classes=ds.classes,
        feature_names=ds.feature_names,
        target=ds.target,
        segment_name=ds.segment_name,
        segments=ds.segments,
        missing_values=how,
    )


# ----------------------------------------------------------------------------------------- sources
def _builtin(name: str, seed: int) -> Dataset:
    if name == "imbalanced":
        X, y = skd.make_classification(
            n_samples=2000,
            n_features=12,
            n_informative=6,
            n_redundant=2,
            weights=[0.9, 0.1],
            class_sep=1.0,
            flip_y=0.01,
            random_state=seed,
        )
        return Dataset(
            name="imbalanced",
            description=(
                "synthetic binary set, 2000 rows x 12 features, ~10% positives "
                f"(make_classification, random_state={seed})"
            ),
            source="synthetic:make_classification",
            X=X,
            y=y.astype(np.int64),
            classes=["negative", "positive"],
            feature_names=[f"x{i}" for i in range(X.shape[1])],
        )
    loader = {"breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine, "digits": skd.load_digits}[name]
    bunch = loader()
    first_line = bunch.DESCR.strip().splitlines()[0:3]
    title = next((ln.strip(" .:*") for ln in first_line if ln.strip(" .:*")), name)
    n, f = bunch.data.shape
    return Dataset(
        name=name,
        description=f"{title}: {n} rows x {f} features, {len(bunch.target_names)} classes (bundled with "
        "scikit-learn)",
        source=f"sklearn:load_{name}",
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        classes=[str(c) for c in bunch.target_names],
        feature_names=[str(c) for c in getattr(bunch, "feature_names", [f"x{i}" for i in range(f)])],
    )


def _csv(path: Path, target: str | None, segment: str | None) -> Dataset:
    if not path.exists():
        known = ", ".join(BUILTIN_DATASETS)
        raise DataError(f"data file {path} does not exist", f"pass an existing CSV path or one of: {known}")
    if not path.is_file():
        raise DataError(f"data path {path} is not a file", "pass the path of a CSV file")
    if target is None:
        raise DataError(
            f"{path.name}: no target column given", "pass --target COLUMN naming the label column"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a readable CSV file: {e}", "check the file's format") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if len(frame) == 0:
        raise DataError(f"{path.name} has a header but no rows", "add data rows to the CSV")
    for role, col in (("target", target), ("segment", segment)):
        if col is not None and col not in columns:
            raise DataError(
                f"{path.name}: {role} column {col!r} not found (columns: {_short(columns)})",
                f"pass --{role} with one of the column names",
            )
    if segment is not None and segment == target:
        raise DataError("the segment column must differ from the target column", "pick another --segment")
    y_raw = frame[target]
    if y_raw.isna().any():
        raise DataError(
            f"{path.name}: target column {target!r} has {int(y_raw.isna().sum())} missing values",
            "drop those rows or fill in their labels",
        )
    features = frame.drop(columns=[c for c in (target, segment) if c is not None])
    if features.shape[1] == 0:
        raise DataError(f"{path.name}: no feature columns besides the target", "add numeric feature columns")
    bad = [c for c in features.columns if not (_is_numeric(features[c]))]
    if bad:
        raise DataError(
            f"{path.name}: non-numeric feature columns: {_short(bad)}",
            "encode them as numbers, or drop them from the CSV",
        )
    X = features.to_numpy(dtype=np.float64)
    labels = sorted({str(v) for v in y_raw.tolist()}, key=_natural)
    index = {c: i for i, c in enumerate(labels)}
    y = np.array([index[str(v)] for v in y_raw.tolist()], dtype=np.int64)
    segments = None if segment is None else frame[segment].astype(str).to_numpy()
    return Dataset(
        name=path.stem,
        description=f"CSV file {path.name}: {X.shape[0]} rows x {X.shape[1]} features, target {target!r}"
        + (f", segment {segment!r}" if segment else ""),
        source=str(path),
        X=X,
        y=y,
        classes=labels,
        feature_names=[str(c) for c in features.columns],
        target=target,
        segment_name=segment,
        segments=segments,
    )


# ----------------------------------------------------------------------------------------- checks
def _finite_features(X: np.ndarray, names: list[str], missing: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    bad = ~np.isfinite(X32)
    if not bad.any():
        return X
    n_nan, n_inf = int(np.isnan(X).sum()), int(bad.sum() - np.isnan(X).sum())
    cols = [f"{names[j]}: {int(c)}" for j, c in enumerate(bad.sum(axis=0)) if c]
    if missing == "reject":
        raise DataError(
            f"features contain {n_nan} NaN and {n_inf} infinite or float32-overflowing values "
            f"(by column: {_short(cols)})",
            "clean the data, or pass --missing impute_median to replace them by the column median",
        )
    X = X.copy()
    for j in np.flatnonzero(bad.any(axis=0)):
        ok = ~bad[:, j]
        if not ok.any():
            raise DataError(f"feature column {names[j]!r} has no finite value", "drop that column")
        X[bad[:, j], j] = float(np.median(X[ok, j]))
    return X


def _impute_note(X: np.ndarray) -> str:
    with np.errstate(over="ignore"):
        n = int((~np.isfinite(X.astype(np.float32))).sum())
    return f"impute_median: {n} NaN/inf feature values replaced by their column's median (whole dataset)"


def _check_classes(y: np.ndarray, classes: list[str]) -> None:
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2:
        raise DataError(
            f"the target has a single class ({classes[0]!r}); a classifier needs at least two",
            "check the --target column or add rows of another class",
        )
    small = [f"{classes[i]!r}: {int(c)}" for i, c in enumerate(counts) if c < MIN_CLASS_ROWS]
    if small:
        raise DataError(
            f"classes too small for the train/validation/calibration/test splits ({', '.join(small)} rows; "
            f"each class needs at least {MIN_CLASS_ROWS})",
            "add rows for those classes or merge them into another class",
        )


def _is_numeric(series: object) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _natural(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _short(items: list[str], limit: int = 8) -> str:
    text = ", ".join(items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
