"""Read a CSV or Parquet table and infer the typed schema of its feature columns.

Each feature column becomes ``numeric`` (float64 holding float32 values, missing = NaN), ``categorical``
(strings, missing = ``""``) or ``boolean`` (the strings ``"true"``/``"false"``, missing = ``""``).
Inference: a column whose non-missing values are all true/false or yes/no (any case, or a bool dtype) is
boolean; a column whose values all parse as numbers is numeric; anything else is categorical.
``--categorical``, ``--numeric`` and ``--drop`` override it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from training.errors import DataError

__all__ = [
    "float32_value",
    "BOOLEAN_STRINGS",
    "Column",
    "ColumnKind",
    "TableOverrides",
    "normalise_boolean",
    "read_table",
    "typed_columns",
]

ColumnKind = Literal["numeric", "categorical", "boolean"]
#: the spellings read as booleans (case-insensitive), normalised to "true" / "false"
BOOLEAN_STRINGS = {"true": "true", "false": "false", "yes": "true", "no": "false"}


@dataclass(frozen=True)
class Column:
    """One typed feature column: ``values`` float64 (numeric) or numpy unicode (categorical/boolean)."""

    name: str
    kind: ColumnKind
    values: np.ndarray

    @property
    def n_missing(self) -> int:
        if self.kind == "numeric":
            return int(np.isnan(self.values).sum())
        return int((self.values == "").sum())


@dataclass(frozen=True)
class TableOverrides:
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


def read_table(path: Path) -> pd.DataFrame:
    """The table at ``path`` (``.parquet``/``.pq`` with pyarrow, anything else as CSV)."""
    if not path.exists():
        raise DataError(
            f"data file {path} does not exist",
            "pass an existing CSV path or one of: breast_cancer, wine, digits, imbalanced, sequences, "
            "mixed_inputs",
        )
    if not path.is_file():
        raise DataError(f"data path {path} is not a file", "pass the path of a CSV or Parquet file")
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise DataError(
                f"{path} is not a readable Parquet file: {str(e)[:200]}", "check the file"
            ) from None
    else:
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"{path} is not a readable CSV file: {e}", "check the file's format") from None
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{path.name} has a header but no rows", "add data rows to the file")
    return frame


def normalise_boolean(series: pd.Series) -> np.ndarray | None:
    """``"true"``/``"false"``/``""`` strings when every non-missing value is a boolean spelling, else None."""
    if pd.api.types.is_bool_dtype(series):
        return np.where(series.to_numpy(dtype=bool), "true", "false").astype(str)
    if pd.api.types.is_numeric_dtype(series):
        return None
    present = series.notna()
    words = series[present].astype(str).str.strip().str.lower()
    if len(words) == 0 or not words.isin(list(BOOLEAN_STRINGS)).all():
        return None
    out = np.full(len(series), "", dtype=object)
    out[present.to_numpy()] = words.map(BOOLEAN_STRINGS).to_numpy()
    return out.astype(str)


def _level_strings(series: pd.Series) -> np.ndarray:
    present = series.notna().to_numpy()
    values = series.to_numpy(dtype=object)
    out = np.full(len(series), "", dtype=object)
    out[present] = [_level(v) for v in values[present]]
    return out.astype(str)


def _level(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _as_numbers(series: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(series, errors="coerce")
    if (parsed.isna() & series.notna()).any():
        return None
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def _infer(name: str, series: pd.Series, overrides: TableOverrides, source: str) -> Column:
    boolean = normalise_boolean(series)
    if name in overrides.numeric:
        if boolean is not None:
            return Column(name, "numeric", np.where(boolean == "", np.nan, (boolean == "true") * 1.0))
        numbers = _as_numbers(series)
        if numbers is None:
            bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()].iloc[0]
            raise DataError(
                f"{source}: --numeric column {name!r} holds the non-number {str(bad)[:40]!r}",
                "clean that column, or declare it --categorical",
            )
        return Column(name, "numeric", numbers)
    if boolean is not None and name not in overrides.categorical:
        return Column(name, "boolean", boolean)
    if name in overrides.categorical:
        return Column(name, "categorical", _level_strings(series))
    numbers = _as_numbers(series)
    if numbers is not None:
        return Column(name, "numeric", numbers)
    return Column(name, "categorical", _level_strings(series))


def typed_columns(
    frame: pd.DataFrame, reserved: list[str], overrides: TableOverrides, source: str
) -> list[Column]:
    """The typed feature columns of ``frame`` (all but ``reserved`` and ``--drop``), in file order."""
    named = set(overrides.categorical) | set(overrides.numeric) | set(overrides.drop)
    unknown = sorted(named - set(frame.columns))
    if unknown:
        raise DataError(
            f"{source}: --categorical/--numeric/--drop name unknown columns {unknown}",
            f"use column names of the file: {', '.join(list(frame.columns)[:12])}",
        )
    both = sorted(set(overrides.categorical) & set(overrides.numeric))
    if both:
        raise DataError(f"columns {both} are declared both --categorical and --numeric", "declare each once")
    columns = [
        _infer(c, frame[c], overrides, source)
        for c in frame.columns
        if c not in reserved and c not in overrides.drop
    ]
    if not columns:
        raise DataError(f"{source}: no feature columns besides the target", "add feature columns")
    for col in columns:
        if col.kind == "numeric":
            with np.errstate(over="ignore"):
                bad = np.isinf(col.values.astype(np.float32)) & ~np.isnan(col.values)
            if bad.any():
                raise DataError(
                    f"{source}: numeric column {col.name!r} has {int(bad.sum())} infinite or "
                    "float32-overflowing "
                    "values",
                    "clean those values (a missing value may be left empty instead)",
                )
    return columns


def float32_value(value: float) -> float:
    """``value`` as the shortest decimal that reads back as the same float32 (11.41, not
    11.40999984741211): what the card records of a float32 column, exactly that float32 when parsed."""
    return float(str(np.float32(value)))
