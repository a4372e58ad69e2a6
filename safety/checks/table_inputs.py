"""Bad-input cases learned from a mixed-type card's schema (issue 11).

For a model with categorical/boolean columns (``card.features`` kind != numeric) the bad-input check also
sends: unseen levels, empty strings (= missing), very long strings, text that was not UTF-8 (the edge
refuses the bytes; the model gets U+FFFD), numbers in categorical columns, strings in numeric columns
(refused at the edge: a float tensor cannot carry them), all-missing rows, a missing column (all values
missing), and an extra column. Each is a valid answer or a declared refusal; run cases must never crash
or produce NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from safety.context import GateContext

__all__ = ["UNSEEN", "table_cases"]

#: a level no training split holds
UNSEEN = "__lockgate_unseen_level__"
LONG = "x" * 100_000


def table_cases(ctx: GateContext, rows: int, make: Callable[..., Any]) -> list[Any]:
    """The schema cases as ``make(id, array, rejected_by, probe, categorical=...)`` objects."""
    card = ctx.card
    cats = card.categorical_features
    numeric = card.numeric_features
    if not cats and not any(f.missing != "error" for f in numeric):
        return []
    dtype = ctx.input_dtype()
    X = ctx.valid_rows(rows, seed=5).astype(np.float64)
    out: list[Any] = []
    missing_ok = all(f.missing != "error" for f in card.features)
    miss_edge = None if missing_ok else "card.features[].missing = error (a missing value is refused)"
    X_gone = np.full_like(X, np.nan)
    if cats:
        C = ctx.valid_categorical(rows)
        refuses_unknown = [f.name for f in cats if f.unknown == "error"]
        unknown_edge = f"features {refuses_unknown} unknown = error" if refuses_unknown else None

        def with_value(value: str) -> np.ndarray:
            c = C.astype(object).copy()
            c[np.arange(rows), np.arange(rows) % len(cats)] = value
            c[-1, :] = value
            return c.astype(str)

        out += [
            make(
                "unseen_level",
                X.astype(dtype),
                unknown_edge,
                unknown_edge is not None,
                categorical=with_value(UNSEEN),
            ),
            make("empty_strings", X.astype(dtype), None, False, categorical=with_value("")),
            make(
                "long_strings",
                X.astype(dtype),
                unknown_edge,
                unknown_edge is not None,
                categorical=with_value(LONG),
            ),
            make(
                "non_utf8",
                X.astype(dtype),
                "the serving edge (request bodies must be UTF-8)",
                True,
                categorical=with_value("\ufffd\ufffd"),
            ),
            make(
                "number_in_categorical",
                X.astype(dtype),
                "card.features[].kind (a number in a categorical column is refused)",
                True,
                categorical=with_value("3.5"),
            ),
            make(
                "extra_column",
                X.astype(dtype),
                "card.features (unknown columns are refused)",
                True,
                categorical=np.hstack([C, C[:, :1]]),
            ),
            make(
                "missing_column",
                X.astype(dtype),
                miss_edge,
                miss_edge is not None,
                categorical=np.hstack([np.full((rows, 1), ""), C[:, 1:]]),
            ),
        ]
        all_missing_c = np.full(C.shape, "", dtype=str)
    else:
        all_missing_c = None
    if numeric:
        out.append(
            make(
                "string_in_numeric",
                X.astype(dtype),
                "card.features[].kind (a float tensor cannot carry a string; the edge refuses it)",
                False,
            )
        )
    out.append(
        make(
            "all_missing_rows",
            X_gone.astype(dtype),
            miss_edge,
            miss_edge is not None,
            categorical=all_missing_c,
        )
    )
    return out
