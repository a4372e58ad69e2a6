"""Pinned composition of a cascade in the data plane: a downstream model ``b`` trained on the outputs of an
upstream ``a`` is called with b's raw columns only; the gateway runs the pinned version of ``a`` on those
rows (through a's own micro-batcher, so it batches with a's other traffic), turns its answer into b's
upstream features and runs ``b``.

Feature contract (the card's ``upstream`` entries): output ``probabilities`` feeds one numeric feature per
class, ``{a}__p_{class}`` (binary: the positive class only); output ``label`` feeds one categorical feature
``{a}__label`` holding the class name. The upstream's inputs are taken by name from b's validated raw
columns: exactly the float32 / string values a direct call to ``a`` with those columns would build, so the
upstream part answers what ``a`` answers. Where ``a`` is stricter than ``b`` about a column (no missing
values, no unseen levels) the request is refused as ``a`` would refuse it.

:func:`compose` checks all of that once, when the catalog is built, and raises :class:`CompositionError`
(a reason without paths, shown in ``/readyz``) for anything that does not fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cascade_registry.artifacts import ModelCard, UpstreamRef

from .columns import Column
from .errors import InvalidInputError

__all__ = [
    "Composition",
    "CompositionError",
    "Infer",
    "Upstream",
    "UpstreamPart",
    "compose_parts",
    "derived_features",
    "raw_card",
]

#: (numeric float32 [N, F], categorical object [N, K] or None) -> (labels [N], probabilities [N, C])
Infer = Callable[[np.ndarray, np.ndarray | None], Awaitable[tuple[np.ndarray, np.ndarray]]]


class CompositionError(Exception):
    """Why a downstream model cannot be composed with its pinned upstream (no file-system paths)."""


def derived_features(card: ModelCard) -> set[str]:
    """The card's features computed from upstream models (the caller never sends them)."""
    named = {f for up in card.upstream for f in up.features}
    return named | {f.name for f in card.features if f.upstream is not None}


def raw_card(card: ModelCard) -> ModelCard:
    """The card as a caller sees a composed model: its raw columns only."""
    derived = derived_features(card)
    return card.model_copy(update={"features": [f for f in card.features if f.name not in derived]})


@dataclass(frozen=True, slots=True)
class _Strict:
    """A column the upstream is stricter about than the downstream: refuse what the upstream would."""

    column: Column
    source: int  # its index in the downstream's raw numeric or categorical array
    numeric: bool


@dataclass(frozen=True, slots=True)
class UpstreamPart:
    name: str
    version: int
    sha256: str
    infer: Infer
    numeric_from: np.ndarray  # downstream raw numeric columns -> the upstream's numeric columns
    categorical_from: np.ndarray | None  # downstream raw categorical columns -> the upstream's
    label: bool  # output 'label' (else probabilities)
    columns: np.ndarray  # probabilities: the class columns taken, in feature order
    classes: np.ndarray  # label: class index -> class name (object array)
    strict: tuple[_Strict, ...]
    on_rows: Callable[[int], None]

    async def outputs(self, x: np.ndarray, cat: np.ndarray | None) -> np.ndarray:
        """The upstream features for downstream raw rows: float32 [N, k] or strings [N, 1]."""
        xa = x[:, self.numeric_from]
        ca = None if self.categorical_from is None or cat is None else cat[:, self.categorical_from]
        if self.strict:
            self._check(xa, ca)
        labels, probabilities = await self.infer(xa, ca)
        self.on_rows(x.shape[0])
        if self.label:
            return self.classes[labels].reshape(-1, 1)
        return probabilities[:, self.columns]

    def _check(self, xa: np.ndarray, ca: np.ndarray | None) -> None:
        for s in self.strict:
            col = s.column
            values = xa[:, col.position] if s.numeric else ca[:, col.position]  # type: ignore[index]
            bad = np.isnan(values) if s.numeric else values == ""
            if not col.allows_missing and bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InvalidInputError(
                    f"row {row}: {col.name!r} is missing, and the upstream model {self.name}:{self.version} "
                    f"does not accept missing values in {col.name!r}",
                    f"send {col.expected} for {col.name!r} in every row",
                    code="missing_value",
                )
            if not s.numeric and col.unknown == "error" and col.levels:
                unseen = [i for i, v in enumerate(values.tolist()) if v != "" and v not in col.levels]
                if unseen:
                    raise InvalidInputError(
                        f"row {unseen[0]}: {col.name!r} is {values[unseen[0]]!r}, a level the upstream model "
                        f"{self.name}:{self.version} refuses (known levels: {sorted(col.levels)[:10]})",
                        f"send one of the known levels of {col.name!r}",
                        code="unknown_level",
                    )


@dataclass(frozen=True, slots=True)
class Composition:
    """Runs the upstream parts, then the downstream model, on the downstream's raw rows."""

    parts: tuple[UpstreamPart, ...]
    infer: Infer  # the downstream's own (micro-batched) model
    numeric_order: np.ndarray | None  # permutation of [raw numeric, upstream numeric]; None = as is
    categorical_order: np.ndarray | None
    numeric_parts: tuple[int, ...]  # indices of parts feeding numeric / categorical features
    categorical_parts: tuple[int, ...]

    @property
    def used(self) -> list[dict[str, Any]]:
        return [{"name": p.name, "version": p.version, "sha256": p.sha256} for p in self.parts]

    async def predict(self, x: np.ndarray, cat: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if len(self.parts) == 1:
            outs: Sequence[np.ndarray] = [await self.parts[0].outputs(x, cat)]
        else:  # concurrently: their micro-batchers flush in the same loop tick
            outs = await asyncio.gather(*(p.outputs(x, cat) for p in self.parts))
        if self.numeric_parts:
            x = np.concatenate([x, *(outs[i] for i in self.numeric_parts)], axis=1, dtype=np.float32)
            if self.numeric_order is not None:
                x = x[:, self.numeric_order]
        if self.categorical_parts:
            pieces = [outs[i] for i in self.categorical_parts]
            cat = np.concatenate(pieces if cat is None else [cat, *pieces], axis=1)
            if self.categorical_order is not None:
                cat = cat[:, self.categorical_order]
        return await self.infer(x, cat)


@dataclass(frozen=True)
class Upstream:
    """What :func:`compose_parts` needs of one pinned upstream slot."""

    ref: UpstreamRef  # the downstream card's entry
    version: int  # the effective pin
    sha256: str
    classes: list[str]
    columns: list[Column]  # the upstream's request columns (its raw table)
    infer: Infer
    on_rows: Callable[[int], None]


def _order(full: list[str], sources: list[str]) -> np.ndarray | None:
    position = {name: i for i, name in enumerate(sources)}
    order = np.array([position[name] for name in full], dtype=np.intp)
    return None if np.array_equal(order, np.arange(len(sources))) else order


def _outputs_of(up: Upstream, owner: str, card: ModelCard) -> tuple[bool, np.ndarray]:
    """(is a label, the probability columns taken) for the features this upstream feeds."""
    name, kinds = up.ref.name, {f.name: f.kind for f in card.features}
    if not up.ref.features:
        raise CompositionError(
            f"{owner}'s card names upstream {name}:{up.ref.version} but not the features it feeds (a card "
            "from before served cascades); retrain it with 'lockgate train --upstream'"
        )
    unknown = [f for f in up.ref.features if f not in kinds]
    if unknown:
        raise CompositionError(
            f"{owner}'s card lists upstream features {unknown} that are not among its features"
        )
    if up.ref.output == "label":
        if up.ref.features != [f"{name}__label"] or kinds[up.ref.features[0]] == "numeric":
            raise CompositionError(f"{owner} takes {name}'s label as one categorical feature '{name}__label'")
        return True, np.zeros(0, dtype=np.intp)
    wanted = [f.removeprefix(f"{name}__p_") for f in up.ref.features]
    if set(wanted) - set(up.classes) or any(kinds[f] != "numeric" for f in up.ref.features):
        raise CompositionError(
            f"{owner} takes the probabilities of classes {wanted} from {name}, but {name}:{up.version} has "
            f"the classes {up.classes}"
        )
    return False, np.array([up.classes.index(c) for c in wanted], dtype=np.intp)


def _part(up: Upstream, owner: str, card: ModelCard, raw: dict[str, Column]) -> UpstreamPart:
    label, columns = _outputs_of(up, owner, card)
    numeric, categorical, strict = [], [], []
    for col in up.columns:
        mine = raw.get(col.name)
        if mine is None or mine.kind != col.kind:
            what = (
                "is not among its raw columns"
                if mine is None
                else f"is {mine.kind} there, {col.kind} in {up.ref.name}"
            )
            raise CompositionError(
                f"{up.ref.name}:{up.version} takes the column {col.name!r}, which {what} of {owner}"
            )
        (numeric if col.kind == "numeric" else categorical).append(mine.position)
        looser_missing = mine.allows_missing and not col.allows_missing
        refuses_levels = col.kind != "numeric" and col.unknown == "error" and bool(col.levels)
        if looser_missing or refuses_levels:
            strict.append(_Strict(col, mine.position, col.kind == "numeric"))
    return UpstreamPart(
        name=up.ref.name,
        version=up.version,
        sha256=up.sha256,
        infer=up.infer,
        numeric_from=np.array(numeric, dtype=np.intp),
        categorical_from=np.array(categorical, dtype=np.intp) if categorical else None,
        label=label,
        columns=columns,
        classes=np.array(up.classes, dtype=object),
        strict=tuple(strict),
        on_rows=up.on_rows,
    )


def compose_parts(card: ModelCard, raw: list[Column], upstreams: list[Upstream], infer: Infer) -> Composition:
    """The composition of the downstream ``card`` (its raw request columns ``raw``) with its pinned
    upstreams, in card order; raises :class:`CompositionError` when they do not fit."""
    owner = str(card.ref)
    by_name = {c.name: c for c in raw}
    parts = tuple(_part(up, owner, card, by_name) for up in upstreams)
    fed = {f for up in upstreams for f in up.ref.features}
    unfed = sorted(derived_features(card) - fed)
    if unfed:
        sources = sorted({f.upstream for f in card.features if f.name in unfed and f.upstream} or {"?"})
        raise CompositionError(
            f"an undeclared composition: {owner}'s features {unfed} come from {', '.join(sources)}, but its "
            "card declares no cascade edge to it (no registered pin, no consumer declaration)"
        )
    numeric_sources = [c.name for c in raw if c.kind == "numeric"]
    categorical_sources = [c.name for c in raw if c.kind != "numeric"]
    numeric_parts, categorical_parts = [], []
    for i, (part, up) in enumerate(zip(parts, upstreams, strict=True)):
        (categorical_parts if part.label else numeric_parts).append(i)
        (categorical_sources if part.label else numeric_sources).extend(up.ref.features)
    return Composition(
        parts=parts,
        infer=infer,
        numeric_order=_order([f.name for f in card.numeric_features], numeric_sources),
        categorical_order=_order([f.name for f in card.categorical_features], categorical_sources),
        numeric_parts=tuple(numeric_parts),
        categorical_parts=tuple(categorical_parts),
    )
