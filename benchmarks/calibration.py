"""Calibration of lockgate's exported ONNX vs scikit-learn's ``CalibratedClassifierCV(cv=5)``.

For every family x {sigmoid, isotonic}, on every built-in data set and on real public tables shipped
inside PyPI packages (statsmodels' ``fair`` -- the table of issue 10 -- and ``anes96``, and
palmerpenguins), this trains a lockgate bundle (``trials=1``: the family defaults, the default
``--calibration-cv 5``) and fits ``CalibratedClassifierCV(<same family's estimator>, method, cv=5)`` on
the same rows (train + validation, with the same native thread limit), then scores both on the unseen
test split: lockgate through ONNX Runtime on ``model.onnx``, scikit-learn natively. ECE is top-label,
10 equal-width bins (``training.metrics``); netcal's ``ECE(bins=10)`` of the same predictions (fed the
top label's confidence and whether it was right: netcal's ECE of a two-column input is the positive
class's) is printed as a check of our metric. Each row is marked ``pass`` when lockgate's Brier <=
scikit-learn's + 0.002 and its ECE <= max(1.1 x, + 0.005), else ``FAIL``; the last line counts them.
The exit status is 0 either way (a benchmark reports, it does not gate).

    .venv/bin/python benchmarks/calibration.py [--all-families] [--data NAME,...] [--families NAME,...]

No downloads: every table ships inside an installed package (dev extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netcal.metrics import ECE  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from training import TrainConfig, train  # noqa: E402
from training.datasets import BUILTIN_DATASETS, load_dataset  # noqa: E402
from training.errors import ExportError  # noqa: E402
from training.families import get_family  # noqa: E402
from training.graph import onnx_predict  # noqa: E402
from training.metrics import brier_score, ece_mce  # noqa: E402
from training.splits import join_splits, split_dataset  # noqa: E402

BASE_FAMILIES = (
    "logistic_regression", "random_forest", "hist_gradient_boosting", "svm", "naive_bayes", "mlp",
)
ENSEMBLES = ("averaging", "majority_vote", "stacking", "balanced_ensemble")
REAL_TABLES = ("fair", "anes96", "penguins")
METHODS = ("sigmoid", "isotonic")
BINS = 10


def real_table(name: str, folder: Path) -> Path:
    """Write a packaged public table as a numeric CSV with a ``target`` column."""
    import statsmodels.api as sm

    if name == "fair":  # Fair (1978) affairs survey: 6366 rows, 8 integer-coded features
        frame = sm.datasets.fair.load_pandas().data
        frame["target"] = (frame.pop("affairs") > 0).astype(int)
    elif name == "anes96":  # 1996 American National Election Study: vote Clinton / Dole
        frame = sm.datasets.anes96.load_pandas().data
        frame["target"] = frame.pop("vote").astype(int)
    elif name == "penguins":  # Palmer penguins: species from body measurements (3 classes)
        from palmerpenguins import load_penguins

        frame = load_penguins().dropna()
        frame = frame.assign(island=frame.island.astype("category").cat.codes,
                             sex=frame.sex.astype("category").cat.codes)
        frame["target"] = frame.pop("species")
        frame = frame.drop(columns=["year"])
    else:
        raise SystemExit(f"unknown table {name!r}")
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def _scores(y: np.ndarray, P: np.ndarray) -> tuple[float, float, float]:
    ours = ece_mce(y, P, BINS)[0]
    # netcal's ECE of a two-column input is the positive class's; fed the top label's confidence and
    # whether it was right, it measures our (top-label) ECE for every number of classes
    theirs = float(ECE(bins=BINS).measure(P.max(axis=1), (P.argmax(axis=1) == y).astype(int)))
    return brier_score(y, P), ours, theirs


def one_case(data: str, target: str | None, family: str, method: str, out: Path, **options: object) -> dict:
    config = TrainConfig(data=data, target=target, model=family, calibration=method, trials=1, seed=0,
                         out=out, name=f"{family.replace('_', '-')}-{method}", overwrite=True, progress=False,
                         **options)
    t0 = time.perf_counter()
    bundle = train(config)
    lg_seconds = time.perf_counter() - t0
    ds = load_dataset(config.data, config.seed, config.target, config.segment, config.missing)
    splits = split_dataset(ds, config.seed, config.validation_fraction, config.effective_calibration_fraction,
                           config.test_fraction)
    pool, test = join_splits("pool", [splits.train, splits.validation]), splits.test
    _, P_lg = onnx_predict((bundle / "model.onnx").read_bytes(), test.X.astype(np.float32))
    fam = get_family(family)
    t0 = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=config.threads):  # as lockgate's training
        warnings.simplefilter("ignore")
        sk = CalibratedClassifierCV(fam.make_estimator(dict(fam.defaults), 0), method=method, cv=5)
        sk.fit(pool.X, pool.y)
        P_sk = np.asarray(sk.predict_proba(test.X), dtype=np.float64)
    sk_seconds = time.perf_counter() - t0
    return {"lg": _scores(test.y, P_lg.astype(np.float64)), "sk": _scores(test.y, P_sk),
            "rows": (len(pool.y), len(test.y)), "seconds": (lg_seconds, sk_seconds)}


def verdict(lg: tuple, sk: tuple) -> bool:
    return lg[0] <= sk[0] + 0.002 and lg[1] <= max(1.1 * sk[1], sk[1] + 0.005)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all-families", action="store_true", help="also the four ensembles (slow)")
    ap.add_argument("--families", default="", help="comma-separated families (default: the base six)")
    ap.add_argument("--data", default="", help="comma-separated data sets (default: builtin + real tables)")
    args = ap.parse_args()
    families = [f for f in args.families.split(",") if f] or list(BASE_FAMILIES) + (
        list(ENSEMBLES) if args.all_families else [])
    datasets = [d for d in args.data.split(",") if d] or list(BUILTIN_DATASETS) + list(REAL_TABLES)
    header = (f"{'data':14s} {'family':23s} {'method':8s} {'rows':>10s} | "
              f"{'lockgate Brier/ECE/netcal':>26s} | {'sklearn Brier/ECE/netcal':>26s} | "
              f"{'seconds lg/sk':>13s} | row")
    print(header)
    print("-" * len(header))
    passed, total, start = 0, 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for data in datasets:
            path, target = (data, None) if data in BUILTIN_DATASETS else (str(real_table(data, Path(tmp))),
                                                                           "target")
            for family in families:
                for method in METHODS:
                    try:
                        r = one_case(path, target, family, method, Path(tmp) / "out")
                    except ExportError as e:  # lockgate refuses to write a bundle without parity
                        total += 1
                        print(f"{data:14s} {family:23s} {method:8s} export refused: {e.problem[:80]} | FAIL",
                              flush=True)
                        continue
                    ok = verdict(r["lg"], r["sk"])
                    passed, total = passed + ok, total + 1
                    lg, sk = r["lg"], r["sk"]
                    print(f"{data:14s} {family:23s} {method:8s} {r['rows'][0]:>5d}/{r['rows'][1]:<4d} | "
                          f"{lg[0]:.4f} / {lg[1]:.4f} / {lg[2]:.4f}   | "
                          f"{sk[0]:.4f} / {sk[1]:.4f} / {sk[2]:.4f}   | "
                          f"{r['seconds'][0]:5.1f} / {r['seconds'][1]:5.1f} | "
                          f"{'pass' if ok else 'FAIL'}", flush=True)
    print(f"\n{passed} of {total} cases meet the target (Brier <= sklearn + 0.002, ECE <= "
          f"max(1.1x, +0.005)); {time.perf_counter() - start:.0f} s, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
