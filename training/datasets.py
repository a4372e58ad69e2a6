"""Load a labelled table: a scikit-learn bundled set, a seeded synthetic set, or a CSV/Parquet file.

Numeric features are returned as float64 holding float32-representable values (missing = NaN): the
exported model receives float32, so training on exactly those values keeps native and ONNX predictions
comparable bit for bit. Categorical and boolean features are returned as strings (missing = ``""``), see
:mod:`training.tables`; the encoding is fitted later, on the training split only
(:mod:`training.preprocessing`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as skd

from cascade_registry.artifacts import InputSpec
from training.errors import DataError
from training.input_sets import digits_image_input, generate_sequences, mixed_inputs, sequence_input
from training.tables import ColumnKind, TableOverrides, read_table, typed_columns

__all__ = ["BUILTIN_DATASETS", "MIN_CLASS_ROWS", "Dataset", "TableOverrides", "describe_dataset",
           "load_dataset"]

#: datasets that ship with scikit-learn or are generated (no downloads)
BUILTIN_DATASETS = ("breast_cancer", "wine", "digits", "imbalanced", "sequences", "mixed_inputs")
#: each class needs two rows in each of the (up to) four splits
MIN_CLASS_ROWS = 8


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    source: str
    X: np.ndarray  # float64 [n, F_numeric], float32-representable, NaN = missing
    y: np.ndarray  # int64 [n], 0..C-1
    classes: list[str]
    feature_names: list[str]
    target: str | None = None
    segment_name: str | None = None
    segments: np.ndarray | None = None  # str [n]
    missing_values: str = "reject"
    notes: list[str] = field(default_factory=list)
    C: np.ndarray | None = None  # str [n, F_categorical] (categorical and boolean columns), "" = missing
    kinds: list[ColumnKind] | None = None  # per feature_names entry; None = all numeric
    time_name: str | None = None
    times: np.ndarray | None = None  # float64 [n], sortable
    #: images / token sequences and the columns each fills (training.input_sets); () = a plain table
    inputs: tuple[InputSpec, ...] = ()

    @property
    def column_kinds(self) -> list[ColumnKind]:
        return list(self.kinds) if self.kinds is not None else ["numeric"] * len(self.feature_names)

    @property
    def categorical(self) -> np.ndarray:
        """str [n, F_categorical] (0 columns for an all-numeric table)."""
        return self.C if self.C is not None else np.zeros((len(self.y), 0), dtype="<U1")

    @property
    def is_mixed(self) -> bool:
        return any(k != "numeric" for k in self.column_kinds)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes())
        if self.is_mixed:
            h.update("\x1e".join("\x1f".join(r) for r in self.categorical.tolist()).encode())
        h.update(np.ascontiguousarray(self.y).tobytes())
        h.update("\x1f".join(self.classes).encode())
        h.update("\x1f".join(self.feature_names).encode())
        return h.hexdigest()


def load_dataset(
    data: str, seed: int = 0, target: str | None = None, segment: str | None = None, missing: str = "auto",
    overrides: TableOverrides | None = None, time_column: str | None = None,
) -> Dataset:
    """The dataset named by ``data`` (builtin name or CSV/Parquet path), validated.

    ``missing``: "error" (or "reject") refuses NaN/empty cells; "auto" (or "impute_median") keeps them as
    missing for :mod:`training.preprocessing`, which imputes on the training split's statistics.
    """
    if data in BUILTIN_DATASETS:
        if target or segment or time_column:
            raise DataError(
                "--target/--segment/--time-column apply to CSV or Parquet files, not to the builtin "
                f"dataset {data!r}",
                "drop them, or pass --data PATH.csv",
            )
        ds = _builtin(data, seed)
    else:
        ds = _table(Path(data), target, segment, overrides or TableOverrides(), time_column)
    strict = missing in ("error", "reject")
    _check_missing(ds, strict)
    _check_classes(ds.y, ds.classes)
    gaps = int(np.isnan(ds.X).sum() + (ds.categorical == "").sum())
    how = "error (missing values refused)" if strict else (
        f"auto: {gaps} missing values; numeric median (training split) + missing indicator, categorical "
        "'missing' level, inside the graph")
    return dataclasses.replace(ds, X=ds.X.astype(np.float32).astype(np.float64), missing_values=how)


def describe_dataset(ds: Dataset, onehot_max: int, rare_min: int) -> str:
    """The inferred schema, one line per feature column (what ``--describe-data`` prints)."""
    lines = [ds.description, f"target {ds.target!r}: {len(ds.classes)} classes {ds.classes[:10]}",
             f"{'column':<24} {'kind':<12} {'missing':>7}  values"]
    num = cat = 0
    for name, kind in zip(ds.feature_names, ds.column_kinds, strict=True):
        if kind == "numeric":
            col = ds.X[:, num]
            num += 1
            gaps = int(np.isnan(col).sum())
            ok = col[~np.isnan(col)]
            text = f"range [{ok.min():.4g}, {ok.max():.4g}]" + (
                " -> median imputation + missing indicator" if gaps else "")
        else:
            col = ds.categorical[:, cat]
            cat += 1
            gaps = int((col == "").sum())
            levels, counts = np.unique(col[col != ""], return_counts=True)
            kept = int((counts >= rare_min).sum()) if kind == "categorical" else len(levels)
            how = "one-hot" if kept <= onehot_max else "target encoding (cross-fitted)"
            text = f"{len(levels)} levels {[str(v) for v in levels[:5]]}{'...' if len(levels) > 5 else ''}"
            text += f" -> {how} over about {kept} kept levels" + (
                f", {len(levels) - kept} rare grouped as 'other'" if len(levels) > kept else "")
        lines.append(f"{name:<24} {kind:<12} {gaps:>7}  {text}")
    lines.append("(encodings are fitted on the training split only; override kinds with --categorical, "
                 "--numeric, --drop)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- sources
def _generated(name: str, seed: int) -> Dataset:
    """The generated sets with input kinds (:mod:`training.input_sets`)."""
    rows = 1200
    if name == "sequences":
        X, y, _ = generate_sequences(rows, seed)
        spec = sequence_input()
        return Dataset(
            name=name, description=f"generated token sequences, {rows} rows of 4-16 tokens: is 'open' before "
            f"'close'? (seed {seed})", source="synthetic:lockgate.sequences", X=X, y=y,
            classes=["ordered", "reversed"], feature_names=list(spec.columns), inputs=(spec,),
        )
    X, y, names, inputs = mixed_inputs(rows, seed)
    return Dataset(
        name=name, description=f"generated multi-input set, {rows} rows: 3 numeric columns + "
        "a token sequence, "
        f"4 classes order x (x0 + x1 > 0) (seed {seed})", source="synthetic:lockgate.mixed_inputs", X=X, y=y,
        classes=["ordered_low", "ordered_high", "reversed_low", "reversed_high"], feature_names=names,
        inputs=inputs,
    )


def _builtin(name: str, seed: int) -> Dataset:
    if name in ("sequences", "mixed_inputs"):
        return _generated(name, seed)
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
    names = [str(c) for c in getattr(bunch, "feature_names", [f"x{i}" for i in range(f)])]
    return Dataset(
        name=name,
        description=f"{title}: {n} rows x {f} features, {len(bunch.target_names)} classes (bundled with "
        "scikit-learn)",
        source=f"sklearn:load_{name}",
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        classes=[str(c) for c in bunch.target_names],
        feature_names=names,
        inputs=(digits_image_input(names),) if name == "digits" else (),
    )


def _table(path: Path, target: str | None, segment: str | None, overrides: TableOverrides,
           time_column: str | None = None) -> Dataset:
    frame = read_table(path)
    if target is None:
        raise DataError(
            f"{path.name}: no target column given", "pass --target COLUMN naming the label column"
        )
    columns = list(frame.columns)
    for role, col in (("target", target), ("segment", segment), ("time-column", time_column)):
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
    reserved = [c for c in (target, segment, time_column) if c is not None]
    typed = typed_columns(frame, reserved, overrides, path.name)
    numeric = [c for c in typed if c.kind == "numeric"]
    categorical = [c for c in typed if c.kind != "numeric"]
    n = len(frame)
    X = np.column_stack([c.values for c in numeric]) if numeric else np.zeros((n, 0))
    C = (np.column_stack([c.values for c in categorical]).astype(str) if categorical
         else np.zeros((n, 0), "<U1"))
    labels = sorted({str(v) for v in y_raw.tolist()}, key=_natural)
    index = {c: i for i, c in enumerate(labels)}
    y = np.array([index[str(v)] for v in y_raw.tolist()], dtype=np.int64)
    segments = None if segment is None else frame[segment].astype(str).to_numpy()
    times = None if time_column is None else _times(frame[time_column], time_column, path.name)
    kinds = ", ".join(f"{sum(c.kind == k for c in typed)} {k}" for k in ("numeric", "categorical", "boolean"))
    return Dataset(
        name=path.stem,
        description=f"table {path.name}: {n} rows x {len(typed)} features ({kinds}), target {target!r}"
        + (f", segment {segment!r}" if segment else "") + (f", time {time_column!r}" if time_column else ""),
        source=str(path),
        X=X,
        y=y,
        classes=labels,
        feature_names=[c.name for c in typed],
        target=target,
        segment_name=segment,
        segments=segments,
        C=C,
        kinds=[c.kind for c in typed],
        time_name=time_column,
        times=times,
    )


def _times(series: pd.Series, name: str, source: str) -> np.ndarray:
    """Sortable float64 times: numbers as they are, anything else parsed as dates (seconds)."""
    if series.isna().any():
        raise DataError(f"{source}: time column {name!r} has {int(series.isna().sum())} missing values",
                        "fill them in or drop those rows")
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64)
    try:
        parsed = pd.to_datetime(series, utc=True, format="mixed")
    except (ValueError, TypeError) as e:
        raise DataError(f"{source}: time column {name!r} is neither numbers nor dates: {e}",
                        "pass a column of dates or numbers") from None
    return (parsed.astype("int64") / 1e9).to_numpy(dtype=np.float64)


# ----------------------------------------------------------------------------------------- checks
def _check_missing(ds: Dataset, strict: bool) -> None:
    nan = np.isnan(ds.X).sum(axis=0)
    empty = (ds.categorical == "").sum(axis=0)
    numeric = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k == "numeric"]
    cats = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k != "numeric"]
    cols = [f"{n}: {int(c)}" for n, c in zip(numeric, nan, strict=True) if c] + [
        f"{n}: {int(c)}" for n, c in zip(cats, empty, strict=True) if c]
    if strict and cols:
        raise DataError(
            f"features contain {int(nan.sum() + empty.sum())} missing values (by column: {_short(cols)})",
            "clean the data, or drop --missing error (the default imputes inside the graph)",
        )
    allgone = [n for n, c in zip(numeric, nan, strict=True) if c == len(ds.y)] + [
        n for n, c in zip(cats, empty, strict=True) if c == len(ds.y)]
    if allgone:
        raise DataError(f"feature columns {allgone} have no value at all", "drop them with --drop")


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


def _natural(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _short(items: list[str], limit: int = 8) -> str:
    text = ", ".join(items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
