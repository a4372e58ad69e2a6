"""Turn decoded rows into the float32 matrix a model expects, or say exactly what is wrong.

Rules come from the card (feature names and order, :class:`InputPolicy`): numbers only (no strings,
booleans or null), one value per feature, finite, ``|x|`` within the policy's limit (float32 overflow),
at least one and at most ``max_batch_rows`` rows. Values far outside the training range are allowed but
flagged with a warning per row.

Images and token sequences (``card.inputs``) travel in ``instances`` under their input's name and become
their columns first (:class:`serving.input_kinds.InputKinds`).

Named-column ``instances`` (any model; the only way to call a model with categorical or boolean
columns) are checked column by column by :class:`serving.columns.TableSchema`: column order is free, a
``null`` or absent key is a missing value where the card allows one, unknown keys are refused unless the
gateway runs with ``--allow-extra-columns``.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from cascade_registry.artifacts import ModelCard

from .columns import TableSchema, Values
from .errors import InvalidInputError, PayloadTooLargeError
from .input_kinds import InputKinds

__all__ = ["RowValidator"]

_NUMBER_TYPES = frozenset({int, float})
_LIST = {list}
_FIX_NUMBERS = "send every feature as a JSON number (no strings, booleans, null, NaN or Infinity)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number_matrix(rows: list[Any], n_features: int, numbers_only: bool = False) -> np.ndarray | None:
    """``rows`` as a float64 [N, n_features] matrix when numpy reads them as numbers of that shape (the
    caller knows no value is a boolean; with ``numbers_only`` no string or null either); None to take
    the type-checking path."""
    if numbers_only:
        if set(map(type, rows)) != _LIST or set(map(len, rows)) != {n_features}:
            return None
        try:
            flat = np.fromiter(chain.from_iterable(rows), np.float64, len(rows) * n_features)
        except (ValueError, TypeError, OverflowError):  # a nested list, an object, a huge integer
            return None
        return flat.reshape(len(rows), n_features)
    try:
        x = np.array(rows)
    except (ValueError, TypeError, OverflowError):  # ragged rows, or an unconvertible value
        return None
    if x.dtype.kind not in "fiu" or x.shape != (len(rows), n_features):
        return None
    return x.astype(np.float64, copy=False)


class RowValidator:
    """Validates inputs for one model card. Built once per loaded model; :meth:`to_matrix` per request."""

    def __init__(self, card: ModelCard, max_batch_rows: int, allow_extra_columns: bool = False) -> None:
        policy = card.input_policy
        self.model = str(card.ref)
        self.max_rows = min(max_batch_rows, policy.max_batch_rows)
        self.reject_nonfinite = policy.reject_nonfinite
        self.max_abs = policy.max_abs_value
        self.table = TableSchema(card, self.max_abs, allow_extra_columns)
        #: images and token sequences sent under their input's name (card.inputs)
        self.kinds = InputKinds(card)
        #: the numeric columns: the legacy positional rows and the ``input`` tensor
        numeric = [f for f in card.features if f.name in {c.name for c in self.table.numeric}]
        self.names = [f.name for f in numeric]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.n_features = len(self.names)
        k = policy.out_of_range_sigmas

        def stat(value: float | None) -> float:
            return np.nan if value is None else value

        # the card writes float32 statistics as short decimals (11.41); read back as the float32 the
        # rows are compared in, a row equal to the training minimum is inside the range
        mins = np.array([stat(f.min) for f in numeric], dtype=np.float32).astype(np.float64)
        maxs = np.array([stat(f.max) for f in numeric], dtype=np.float32).astype(np.float64)
        stds = np.array([stat(f.std) for f in numeric], dtype=np.float32).astype(np.float64)
        self.mins, self.maxs = mins, maxs
        self.low = mins - k * stds
        self.high = maxs + k * stds
        self.sigmas = k

    # ------------------------------------------------------------------------------------ rows
    def check_count(self, n: int) -> None:
        if n == 0:
            raise InvalidInputError(
                "'inputs' is empty", f"send between 1 and {self.max_rows} rows", code="empty_batch"
            )
        if n > self.max_rows:
            raise PayloadTooLargeError(
                f"{n} rows in one request; {self.model} accepts at most {self.max_rows}",
                f"split the batch into requests of at most {self.max_rows} rows",
                code="batch_too_large",
            )

    def _rows_list(self, rows: Any, where: str) -> None:
        if not isinstance(rows, list):
            example = ", ".join(f'"{n}": ...' for n in self.table.names[:3])
            raise InvalidInputError(
                f"'{where}' is {_kind(rows)}, expected a list of rows",
                f'send "{where}": [{{{example}}}, ...]',
            )
        self.check_count(len(rows))

    def from_instances(self, rows: Any, where: str = "instances", booleans: bool = True) -> Values:
        """Objects keyed by column name, any order -> (numeric float32, categorical or None, notes).
        ``booleans``: as for :meth:`to_matrix`."""
        self._rows_list(rows, where)
        if set(map(type, rows)) != {dict}:
            i = next(i for i, row in enumerate(rows) if type(row) is not dict)
            raise InvalidInputError(
                f"{where}[{i}] is {_kind(rows[i])}, expected an object keyed by column name",
                f'send every row as an object such as {{"{self.table.names[0]}": ...}}',
                code="ragged_rows",
            )
        def at(i: int, name: str) -> str:
            return f"{where}[{i}].{name}"

        kind_notes = None
        if self.kinds:
            rows, kind_notes = self.kinds.expand(rows, where)
        booleans = booleans or bool(self.kinds)  # expanded kinds write values of their own
        numeric, categorical, notes = self.table.assemble(
            self.table.columns_of(rows, where), len(rows), at, booleans
        )
        if kind_notes is not None:
            notes = kind_notes if notes is None else [a + b for a, b in zip(kind_notes, notes, strict=True)]
        return numeric, categorical, notes

    def to_matrix(
        self, rows: Any, where: str = "inputs", booleans: bool = True, numbers_only: bool = False
    ) -> np.ndarray:
        """A list of rows (lists in feature order, or objects keyed by feature name) -> float32 [N, F].

        ``booleans=False`` (the body holds no JSON true/false: :func:`serving.codecs.may_hold_booleans`)
        lets numpy find the value types while it builds the matrix: an int or float dtype of shape
        [N, F] means every value is a number (a string, null, list or object gives another dtype, shape
        or a ValueError, and the checked path below explains it); only booleans would pass as numbers.
        ``numbers_only=True`` (no string, boolean or null in the body beyond its envelope) goes further:
        after two C-level passes over the rows (all lists of F values), ``np.fromiter`` reads the values
        straight into float64 (a nested list, an empty object or an integer beyond float64 raise, and
        the checked path explains them)."""
        self._positional(where)
        if not isinstance(rows, list):
            raise InvalidInputError(
                f"'{where}' is {_kind(rows)}, expected a list of rows",
                f'send "{where}": [[{", ".join(self.names[:3])}, ...], ...]',
            )
        if rows and type(rows[0]) in _NUMBER_TYPES:
            shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in rows[:3])
            raise InvalidInputError(
                f"'{where}' is one flat list of {len(rows)} values, but it must be a list of rows",
                f'wrap each row in its own list, even a single one: "{where}": [[{shown}, ...]]',
                code="flat_row",
            )
        self.check_count(len(rows))
        n_features = self.n_features
        numbers = _NUMBER_TYPES
        if not booleans and type(rows[0]) is list:
            x = _number_matrix(rows, n_features, numbers_only)
            if x is not None:
                return self.check_values(x, where)
        if type(rows[0]) is dict:
            rows = [self._ordered(row, i, where) for i, row in enumerate(rows)]
        # three C-level passes (row types, row lengths, value types); the slow per-row walk runs only
        # to explain a failure
        if (
            set(map(type, rows)) != _LIST
            or set(map(len, rows)) != {n_features}
            or not set(map(type, chain.from_iterable(rows))) <= numbers
        ):
            for i, row in enumerate(rows):
                self._explain_row(row, i, where)
        try:
            x = np.array(rows, dtype=np.float64)
        except OverflowError:
            raise InvalidInputError(
                f"'{where}' holds an integer too large for a float", _FIX_NUMBERS, code="value_overflow"
            ) from None
        return self.check_values(x, where)

    def _positional(self, where: str) -> None:
        """Positional rows are for all-numeric models only."""
        if self.table.mixed:
            raise InvalidInputError(
                f"{self.model} has categorical or boolean columns, so it cannot take positional "
                f"'{where}' rows",
                "use instances with column names: "
                f'{{"model": ..., "instances": [{{"{self.table.names[0]}": ..., ...}}]}}',
                code="use_instances",
            )

    def check_matrix(self, x: np.ndarray, where: str = "inputs") -> np.ndarray:
        """Rows already read as numbers (float64 [N, W], :mod:`serving.number_rows`) -> float32 [N, F]:
        the checks :meth:`to_matrix` makes, in its order, with its errors (W != F fails at row 0)."""
        self._positional(where)
        self.check_count(x.shape[0])
        if x.shape[1] != self.n_features:
            self._explain_row([0.0] * x.shape[1], 0, where)
        return self.check_values(x, where)

    def check_values(self, x: np.ndarray, where: str = "inputs") -> np.ndarray:
        """Finite and float32-safe checks on an already numeric [N, F] array; returns float32."""
        if np.abs(x).max(initial=0.0) <= self.max_abs:  # one pass: NaN and +-inf fail it, and look closer
            return x.astype(np.float32)
        if self.reject_nonfinite and not np.isfinite(x).all():
            r, c = np.argwhere(~np.isfinite(x))[0]
            if np.isnan(x[r, c]):
                raise InvalidInputError(
                    f"{where}[{r}][{c}] ({self.names[c]}) is NaN",
                    "replace missing values before calling",
                    code="non_finite",
                )
            raise InvalidInputError(
                f"{where}[{r}][{c}] ({self.names[c]}) is infinite (numbers beyond float64 range parse as "
                "infinity)",
                "send values within the range the model was trained on",
                code="value_overflow",
            )
        big = np.abs(x) > self.max_abs
        if big.any():
            r, c = np.argwhere(big)[0]
            raise InvalidInputError(
                f"{where}[{r}][{c}] ({self.names[c]}) = {x[r, c]:.3g} overflows float32 "
                f"(limit |x| <= {self.max_abs:.3g})",
                "scale the feature the way the model was trained on",
                code="value_overflow",
            )
        return x.astype(np.float32)

    def _ordered(self, row: Any, i: int, where: str) -> list[Any]:
        if type(row) is not dict:
            raise InvalidInputError(
                f"{where}[{i}] is {_kind(row)} but {where}[0] is an object",
                "send every row in the same form: all objects or all lists",
                code="ragged_rows",
            )
        if len(row) != self.n_features or not all(name in row for name in self.names):
            missing = [n for n in self.names if n not in row]
            unknown = [k for k in row if k not in self.index]
            parts = [f"missing features {missing}"] if missing else []
            parts += [f"unknown features {unknown}"] if unknown else []
            raise InvalidInputError(
                f"{where}[{i}] has {' and '.join(parts) or 'duplicate features'}",
                f"send exactly the {self.n_features} features {self.names}",
                code="feature_names",
            )
        return [row[name] for name in self.names]

    def _explain_row(self, row: Any, i: int, where: str) -> None:
        if type(row) is not list:
            raise InvalidInputError(
                f"{where}[{i}] is {_kind(row)}, expected a list of {self.n_features} numbers",
                "send every row in the same form: all lists (feature order) or all objects",
                code="ragged_rows",
            )
        if len(row) != self.n_features:
            raise InvalidInputError(
                f"{where}[{i}] has {len(row)} values; {self.model} takes {self.n_features} "
                f"features {self.names}",
                "send one value per feature, in the card's order, or objects keyed by feature name",
                code="feature_count",
            )
        for j, value in enumerate(row):
            if type(value) not in _NUMBER_TYPES:
                raise InvalidInputError(
                    f"{where}[{i}][{j}] ({self.names[j]}) is {_kind(value)}, expected a number",
                    _FIX_NUMBERS,
                    code="not_a_number",
                )

    # ------------------------------------------------------------------------------------ warnings
    def warnings(self, x: np.ndarray) -> list[list[str]] | None:
        """Per-row warnings for values beyond the training range (None when no row has any)."""
        out = (x < self.low) | (x > self.high)
        if not out.any():
            return None
        result: list[list[str]] = [[] for _ in range(x.shape[0])]
        for r, c in np.argwhere(out):
            result[r].append(
                f"{self.names[c]}={float(x[r, c]):.6g} lies more than {self.sigmas:g} std outside the "
                f"training range [{self.mins[c]:.6g}, {self.maxs[c]:.6g}]"
            )
        return result
