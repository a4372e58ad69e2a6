"""The table a model takes (read from its card), and named columns -> the graph's inputs.

The graph contract (issue 11): ``input`` float32 ``[N, n_numeric]`` holds the numeric columns in card
order (missing = NaN); when the card has categorical or boolean columns, ``categorical`` string
``[N, n_categorical]`` holds those in card order (missing = ``""``, booleans as ``"true"``/``"false"``).
The graph imputes and encodes; the gateway only checks each value against its column and places it.

Cards written before typed features carry none of the new fields: every feature is numeric then, and a
missing value is refused (``missing == "error"``).

Per column, the checks are C-level passes over the column's values (``set(map(type, values))``, one
set difference for unseen levels); the slow walk that names the first bad row runs only on failure.
When the body holds no JSON boolean (:func:`serving.codecs.may_hold_booleans`), numpy's dtype of the
numeric columns is their type check (a string, null, list or object gives another dtype); where a
categorical column's levels are checked, ``issuperset`` is its type check too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from cascade_registry.artifacts import ModelCard

from .errors import InvalidInputError

__all__ = ["Column", "TableSchema", "Values", "describe_value"]

_NUMBERS = frozenset({int, float})
_STR = {str}
_BOOL_TEXT = {"true": "true", "yes": "true", "1": "true", "false": "false", "no": "false", "0": "false"}
_BOOL_JSON: dict[Any, str] = {True: "true", False: "false"}  # 1 == True and 0 == False: JSON 1/0 too
_BOOL_FAST: dict[Any, str] = {
    **_BOOL_JSON,
    **_BOOL_TEXT,
    **{k.upper(): v for k, v in _BOOL_TEXT.items()},
    **{k.capitalize(): v for k, v in _BOOL_TEXT.items()},
}

#: what a caller sent for one row: an ``at(i, name)`` label such as ``instances[3].city``
Where = Callable[[int, str], str]
#: (numeric float32 [N, n_numeric], categorical object [N, n_cat] or None, per-row notes or None)
Values = tuple[np.ndarray, np.ndarray | None, list[list[str]] | None]


def describe_value(value: Any) -> str:
    """A short, safe rendering of a caller's value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return repr(value)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # "numeric" | "categorical" | "boolean"
    position: int  # its index inside ``input`` (numeric) or ``categorical`` (the others)
    allows_missing: bool
    levels: frozenset[str]
    unknown: str  # "error" | "ignore" | "other"
    accepts_bool: bool  # a numeric column that holds a boolean (dtype bool): true/false -> 1/0

    @property
    def expected(self) -> str:
        if self.kind == "numeric":
            return "a number" + (" or true/false" if self.accepts_bool else "")
        if self.kind == "boolean":
            return "true or false"
        return "a string (a categorical level)"


def _columns(card: ModelCard) -> list[Column]:
    out: list[Column] = []
    counts = {"numeric": 0, "other": 0}
    for f in card.features:
        kind = getattr(f, "kind", "numeric") or "numeric"
        slot = "numeric" if kind == "numeric" else "other"
        out.append(
            Column(
                name=f.name,
                kind=kind,
                position=counts[slot],
                allows_missing=getattr(f, "missing", "error") != "error",
                levels=frozenset(getattr(f, "levels", None) or ()),
                unknown=getattr(f, "unknown", "other") or "other",
                accepts_bool=kind == "numeric"
                and str(getattr(f, "dtype", "")).lower() in ("bool", "boolean"),
            )
        )
        counts[slot] += 1
    return out


def _number_columns(columns: list[Sequence[Any]], n: int) -> np.ndarray | None:
    """The numeric columns as float64 [n, k] when numpy reads every value as a number (the caller knows
    none is a boolean: a string, null, list or object gives another dtype or shape); None otherwise."""
    try:
        x = np.array(columns)
    except (ValueError, TypeError, OverflowError):
        return None
    if x.dtype.kind not in "fiu" or x.shape != (len(columns), n):
        return None
    return x.astype(np.float64, copy=False).T


class TableSchema:
    """The columns of one card; :meth:`assemble` turns per-column values into the graph's arrays."""

    def __init__(self, card: ModelCard, max_abs: float, allow_extra: bool = False) -> None:
        self.columns = _columns(card)
        self.numeric = [c for c in self.columns if c.kind == "numeric"]
        self.categorical = [c for c in self.columns if c.kind != "numeric"]
        self.mixed = bool(self.categorical)
        self.names = [c.name for c in self.columns]
        self.by_name = {c.name: c for c in self.columns}
        self.known = frozenset(self.names)
        self.allow_extra = allow_extra
        self.max_abs = max_abs
        names = tuple(self.names)
        self._getter: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        )

    # ------------------------------------------------------------------------------------ checks
    def check_names(self, names: set[str], where: str, first_with: Callable[[str], int | None]) -> None:
        """422 for a column the card does not know (unless extra columns are allowed)."""
        if self.allow_extra or names <= self.known:
            return
        extra = sorted(names - self.known)
        at = first_with(extra[0])
        shown = ", ".join(repr(n[:40]) for n in extra[:5])
        raise InvalidInputError(
            f"{where}{'' if at is None else f'[{at}]'} has the unknown column(s) {shown}; this model's "
            f"columns are {self.names}",
            "drop the extra keys (check their spelling), or start the gateway with --allow-extra-columns",
            code="unknown_column",
        )

    def columns_of(self, rows: list[dict[str, Any]], where: str) -> Callable[[str], Sequence[Any] | None]:
        """Column name -> its values in row order, after refusing unknown keys (:meth:`check_names`).
        When every row holds exactly the card's columns (the usual case) that is one C-level
        ``itemgetter`` pass and a transpose, and no key can be unknown; otherwise a ``.get`` per row and
        column (absent keys read as None)."""
        if set(map(len, rows)) == {len(self.names)}:
            try:
                by_name = dict(zip(self.names, zip(*map(self._getter, rows), strict=True), strict=True))
            except KeyError:  # an extra key stood in for a missing one
                pass
            else:
                return by_name.get
        self.check_names(
            set().union(*rows), where, lambda name: next(i for i, r in enumerate(rows) if name in r)
        )
        return lambda name: [row.get(name) for row in rows]

    def assemble(
        self, values_of: Callable[[str], Sequence[Any] | None], n: int, at: Where, booleans: bool = True
    ) -> Values:
        """Per-column values (``values_of(name)``: n values, or None when the column was not sent at
        all) -> (numeric float32, categorical or None, per-row notes or None). ``booleans=False`` says
        no value is a JSON boolean (:func:`serving.codecs.may_hold_booleans`).

        Each part first tries one pass over the whole table (every value present and of its column's
        kind, no unseen level); the per-column walk below explains or handles anything else."""
        numeric = self._numeric_array(values_of, n, at, booleans)
        if not self.mixed:
            return numeric, None, None
        columns = [values_of(col.name) for col in self.categorical]
        fast = self._categorical_fast(columns, n)
        if fast is not None:
            return numeric, fast, None
        cat = np.empty((n, len(self.categorical)), dtype=object)
        notes: list[list[str]] | None = None
        for col, values in zip(self.categorical, columns, strict=True):
            if values is None:
                values = [None] * n
            values = (
                self._booleans(col, values, at) if col.kind == "boolean" else self._levels(col, values, at)
            )
            notes = self._unseen(col, values, at, notes)
            cat[:, col.position] = values
        return numeric, cat, notes

    def _numeric_array(
        self, values_of: Callable[[str], Sequence[Any] | None], n: int, at: Where, booleans: bool = True
    ) -> np.ndarray:
        columns = [values_of(col.name) for col in self.numeric]
        x = None if booleans or None in columns else _number_columns(columns, n)
        if x is None:
            x = self._checked_numbers(columns, n, at)
        top = np.abs(x).max(initial=0.0)
        if not top <= self.max_abs:  # above the limit, or NaN (a missing value): look closer
            self._check_range(x, at)
        return x.astype(np.float32, order="C")

    def _checked_numbers(self, columns: list[Sequence[Any] | None], n: int, at: Where) -> np.ndarray:
        """The numeric columns as float64 [n, k] after a type pass (booleans, nulls and absent columns
        follow each column's policy; anything else that is not a number is refused by name)."""
        if None in columns or not set(map(type, chain.from_iterable(columns))) <= _NUMBERS:
            columns = [self._numbers(c, v, n, at) for c, v in zip(self.numeric, columns, strict=True)]
        try:
            return np.array(columns, dtype=np.float64).reshape(len(self.numeric), n).T
        except OverflowError:
            raise InvalidInputError(
                "a numeric column holds an integer too large for a float",
                "send values within the range the model was trained on",
                code="value_overflow",
            ) from None

    def _categorical_fast(self, columns: list[Sequence[Any] | None], n: int) -> np.ndarray | None:
        """The categorical array when every value is present, a string (booleans: a usual spelling) and a
        known level; None to take the checked path. Where the column's levels are checked, that check
        is the type check too (a level is a non-empty string; a list or object makes it a TypeError)."""
        out = np.empty((n, len(columns)), dtype=object)
        for col, values in zip(self.categorical, columns, strict=True):
            if values is None:
                return None
            if col.kind == "boolean":
                try:
                    values = list(map(_BOOL_FAST.get, values))
                except TypeError:
                    return None
                if None in values:
                    return None
            levels = col.levels if col.levels and col.unknown != "ignore" else None
            if levels is None and (set(map(type, values)) != _STR or "" in values):
                return None
            if levels is not None:
                try:
                    if not levels.issuperset(values) or "" in levels and "" in values:
                        return None
                except TypeError:  # a list or object among the values
                    return None
            out[:, col.position] = values
        return out

    def _missing(self, col: Column, i: int, at: Where, absent: bool) -> InvalidInputError:
        what = "has no value (the key is absent)" if absent else "is missing (null or empty)"
        return InvalidInputError(
            f"{at(i, col.name)} {what}, and column {col.name!r} does not accept missing values "
            "(the model was trained without gaps there)",
            f"send {col.expected} for {col.name!r} in every row",
            code="missing_value",
        )

    def _wrong_kind(self, col: Column, i: int, value: Any, at: Where) -> InvalidInputError:
        return InvalidInputError(
            f"{at(i, col.name)} is {describe_value(value)}, but {col.name!r} is a {col.kind} column: "
            f"expected {col.expected}",
            f"send {col.name!r} as {col.expected}"
            + (' (quote numeric-looking levels, e.g. "75001")' if col.kind == "categorical" else ""),
            code="wrong_kind",
        )

    def _numbers(self, col: Column, values: Sequence[Any] | None, n: int, at: Where) -> Sequence[Any]:
        if values is None:
            if not col.allows_missing:
                raise self._missing(col, 0, at, absent=True)
            return [np.nan] * n
        types = set(map(type, values))
        if types <= _NUMBERS:
            return values
        if col.accepts_bool and types <= {int, float, bool, type(None)}:
            values = [float(v) if type(v) is bool else v for v in values]
            types = set(map(type, values))
        if col.allows_missing and types <= {int, float, type(None)}:
            return [np.nan if v is None else v for v in values]
        for i, v in enumerate(values):
            if v is None:
                raise self._missing(col, i, at, absent=False)
            if type(v) not in _NUMBERS:
                raise self._wrong_kind(col, i, v, at)
        return values  # pragma: no cover - one of the values above is wrong

    def _check_range(self, x: np.ndarray, at: Where) -> None:
        big = np.abs(x) > self.max_abs  # NaN (missing) compares False; +-inf (1e400 parsed) is caught
        if big.any():
            r, c = np.argwhere(big)[0]
            col = self.numeric[c]
            raise InvalidInputError(
                f"{at(int(r), col.name)} = {x[r, c]:.3g} overflows float32 (limit |x| <= {self.max_abs:.3g})",
                "send values within the range the model was trained on",
                code="value_overflow",
            )

    def _levels(self, col: Column, values: Sequence[Any], at: Where) -> Sequence[Any]:
        if set(map(type, values)) == _STR and "" not in values:
            return values
        out = []
        for i, v in enumerate(values):
            if v is None or v == "":
                if not col.allows_missing:
                    raise self._missing(col, i, at, absent=False)
                v = ""
            elif type(v) is not str:
                raise self._wrong_kind(col, i, v, at)
            out.append(v)
        return out

    def _booleans(self, col: Column, values: Sequence[Any], at: Where) -> Sequence[Any]:
        try:
            fast = list(map(_BOOL_FAST.get, values))  # the usual spellings, one C-level pass
        except TypeError:  # a list or object among the values: explained below
            fast = [None]
        if None not in fast:
            return fast
        out = []
        for i, v in enumerate(values):
            if v is None or v == "":
                if not col.allows_missing:
                    raise self._missing(col, i, at, absent=False)
                out.append("")
                continue
            t = type(v)
            text = (
                _BOOL_TEXT.get(v.strip().lower())
                if t is str
                else _BOOL_JSON.get(v)
                if t in (bool, int)
                else None
            )
            if text is None:
                raise self._wrong_kind(col, i, v, at)
            out.append(text)
        return out

    def _unseen(
        self, col: Column, values: Sequence[Any], at: Where, notes: list[list[str]] | None
    ) -> list[list[str]] | None:
        if not col.levels or col.unknown == "ignore":
            return notes
        unseen = set(values) - col.levels
        unseen.discard("")
        if not unseen:
            return notes
        for i, v in enumerate(values):
            if v not in unseen:
                continue
            if col.unknown == "error":
                shown = sorted(col.levels)[:10]
                raise InvalidInputError(
                    f"{at(i, col.name)} is {describe_value(v)}, not a level of {col.name!r} seen in training "
                    f"(known levels: {shown}{' …' if len(col.levels) > 10 else ''})",
                    f"send one of the known levels of {col.name!r}; this model refuses unseen levels",
                    code="unknown_level",
                )
            if notes is None:
                notes = [[] for _ in values]
            notes[i].append(
                f"{col.name}={describe_value(v)} was not seen in training; the model read it as the 'other' "
                "level"
            )
        return notes
