"""Benchmark of the default demo training (what `lockgate train` does with no arguments).

Prints wall time, CPU time, peak RSS and the ONNX parity figure of the demo bundle, and the same for one
training per model family (binary breast_cancer, calibration auto). Target: the demo trains, calibrates
and exports in under 5 s on 2 cores (issue 10).

    .venv/bin/python benchmarks/train.py [--families] [--jobs]

``--jobs``: a 32-trial random-forest search (breast_cancer, 3-fold cross-fitted calibration) with
``jobs=1`` and ``jobs=2`` (issue 16): wall time of each, the speed-up, and whether the two model.onnx
files are byte-identical (they must be).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_IMPORT_START = time.perf_counter()
from cascade_registry.artifacts import ModelBundle  # noqa: E402
from training import TrainConfig, train  # noqa: E402
from training.families import family_names  # noqa: E402

#: what a user waits for before training starts (numpy, scikit-learn, onnx, onnxruntime, ...)
IMPORT_SECONDS = time.perf_counter() - _IMPORT_START

TARGET_SECONDS = 5.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(config: TrainConfig) -> tuple[float, float, ModelBundle]:
    wall, cpu = time.perf_counter(), time.process_time()
    path = train(config)
    return time.perf_counter() - wall, time.process_time() - cpu, ModelBundle.load(path)


def _jobs(tmp: Path) -> bool:
    """--jobs 1 vs 2 on one 32-trial search; True when the ONNX files are identical."""
    import os

    print("\n== 32-trial search, random_forest on breast_cancer, --calibration-cv 3: --jobs 1 vs 2")
    walls, onnx = {}, {}
    for jobs in (1, 2):
        config = TrainConfig(
            data="breast_cancer", model="random_forest", trials=32, calibration_cv=3, jobs=jobs,
            name="jobs", out=tmp / f"jobs{jobs}", progress=False,
        )
        walls[jobs], _, bundle = _timed(config)
        onnx[jobs] = (bundle.path / "model.onnx").read_bytes()
        print(f"--jobs {jobs}            wall {walls[jobs]:6.2f} s  (load average {os.getloadavg()[0]:.1f})")
    same = onnx[1] == onnx[2]
    print(f"speed-up           {walls[1] / walls[2]:.2f}x on {os.cpu_count()} cores")
    print(f"model.onnx         {'byte-identical' if same else 'DIFFERENT'} ({len(onnx[1])} bytes)")
    return same


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        import_seconds = IMPORT_SECONDS
        wall, cpu, bundle = _timed(TrainConfig(out=Path(tmp), progress=False))
        card = bundle.card
        print("== default demo training (lockgate train, no arguments)")
        print(
            f"dataset            {card.dataset.name} ({card.dataset.rows} rows x {card.dataset.n_features})"
        )
        print(
            f"model              {card.family}, {card.search.trials} candidates, calibration "
            f"{card.calibration.method}"
        )
        print(
            f"wall time          {wall:.2f} s  (+ {import_seconds:.2f} s imports; "
            f"target < {TARGET_SECONDS:.0f} s)"
        )
        print(f"cpu time           {cpu:.2f} s  (load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores: wall time is about cpu time on a quiet machine)")
        print(f"peak RSS           {_peak_rss_mb():.0f} MB")
        print(
            f"parity max |dp|    {card.export.parity_max_abs_diff:.2e} on {card.export.parity_rows} rows "
            f"(limit {card.export.parity_limit:g})"
        )
        print(
            f"test accuracy      {card.metrics.accuracy:.4f}, ECE {card.calibration.before.ece:.4f} -> "
            f"{card.calibration.after.ece:.4f}"
        )
        ok = wall < TARGET_SECONDS and card.export.parity_max_abs_diff <= card.export.parity_limit
        if "--families" in sys.argv:
            print("\n== one training per family (breast_cancer, trials=4, calibration auto)")
            for name in family_names():
                w, c, b = _timed(TrainConfig(model=name, trials=4, out=Path(tmp) / name, progress=False))
                print(
                    f"{name:24s} wall {w:6.2f} s  cpu {c:6.2f} s  "
                    f"parity {b.card.export.parity_max_abs_diff:.1e}"
                    f"  f1 {b.card.metrics.f1_macro:.4f}"
                )
            print(f"peak RSS           {_peak_rss_mb():.0f} MB")
        if "--jobs" in sys.argv:
            ok = _jobs(Path(tmp)) and ok
        print(f"\nresult: {'OK' if ok else 'MISSED TARGET'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
