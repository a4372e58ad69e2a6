"""A seeded two-stage table for cascades: an intermediate label that a downstream decision needs.

Stage ``a`` (the upstream) predicts ``risky`` (``no``/``yes``) from ``g1..g4`` and the categorical
``region``: ``risky`` is yes when ``g1 * g2 + 0.6 * sin(2 * g3) + 0.3 * g4 + 0.5 * [region = north] - 0.2``
plus noise is positive — an interaction a linear model cannot learn from the raw columns, a tree ensemble
can. Stage ``b`` decides ``default`` (``no``/``yes``) from ``risky`` and two columns of its own, ``h1`` and
``h2``; it never sees ``risky`` itself, only ``g1..g4`` and ``region`` (its raw columns include every
input of ``a``, as a cascade must) and ``a``'s output.

Three tables, disjoint rows: ``a`` (g1..g4, region, risky) to train the upstream; ``b`` (g1..g4, region,
h1, h2, default) to train the downstream; ``labelled`` (b's columns + the true ``risky``) for
``lockgate analyze --upstream-truth a=risky``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cascade_registry.artifacts import write_text_atomic

__all__ = ["A_INPUTS", "CASCADE_FILES", "REGIONS", "cascade_tables", "write_cascade_tables"]

#: the levels of the categorical column ``region`` (an input of stage a)
REGIONS = ("east", "north", "south")
#: the columns stage a reads (every one is a raw column of stage b too)
A_INPUTS = ("g1", "g2", "g3", "g4", "region")

#: file names written by :func:`write_cascade_tables`
CASCADE_FILES = {"a": "cascade_a.csv", "b": "cascade_b.csv", "labelled": "cascade_labelled.csv"}


def _rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    g = rng.normal(size=(n, 4))
    h = rng.normal(size=(n, 2))
    region = rng.choice(np.array(REGIONS), size=n)
    z = (g[:, 0] * g[:, 1] + 0.6 * np.sin(2 * g[:, 2]) + 0.3 * g[:, 3] + 0.5 * (region == "north") - 0.2
         + rng.normal(scale=0.25, size=n))
    risky = z > 0
    score = 2.2 * risky + 0.9 * h[:, 0] - 0.7 * h[:, 1] + rng.normal(scale=0.35, size=n)
    frame = pd.DataFrame({f"g{i + 1}": np.round(g[:, i], 4) for i in range(4)})
    frame["region"] = region
    frame["h1"], frame["h2"] = np.round(h[:, 0], 4), np.round(h[:, 1], 4)
    frame["risky"] = np.where(risky, "yes", "no")
    frame["default"] = np.where(score > 1.1, "yes", "no")
    return frame


def cascade_tables(seed: int = 0, rows: int = 1200) -> dict[str, pd.DataFrame]:
    """The three tables (keys of :data:`CASCADE_FILES`), ``rows`` rows each, from one seeded generator."""
    frame = _rows(np.random.default_rng(seed), 3 * rows)
    a, b, labelled = (frame.iloc[i * rows:(i + 1) * rows].reset_index(drop=True) for i in range(3))
    return {
        "a": a[[*A_INPUTS, "risky"]],
        "b": b[[*A_INPUTS, "h1", "h2", "default"]],
        "labelled": labelled[[*A_INPUTS, "h1", "h2", "default", "risky"]],
    }


def write_cascade_tables(out: Path, seed: int = 0, rows: int = 1200) -> dict[str, Path]:
    """Write the three tables as CSV files into ``out`` (each atomically); return their paths by key."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, frame in cascade_tables(seed, rows).items():
        paths[key] = out / CASCADE_FILES[key]
        write_text_atomic(paths[key], frame.to_csv(index=False))
    return paths
