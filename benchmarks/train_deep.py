"""Benchmark: the default MLP on the demo data (breast_cancer), and ONNX inference of a stack vs one model.

Prints: seconds per epoch (mean, median) and in total for the default ``mlp`` family model; rows/s of ONNX
Runtime inference (1 thread) for the stacked ensemble (logistic regression + random forest + naive Bayes,
k=10) vs the single logistic-regression and MLP graphs, at batch sizes 1 and 256.

Topology rows (:func:`topology_rows`): per topology (cnn on digits, gru on the generated sequences, multi on
mixed_inputs) its seconds per epoch and ONNX rows/s, each as a ratio to the MLP trained and timed in the
same run on the same rows (flattened input), with both test accuracies; the load average is printed.

    .venv/bin/python benchmarks/train_deep.py
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from training.datasets import load_dataset
from training.deep import export_mlp, onnx_bytes
from training.deep.family import make_mlp
from training.deep.topology_family import make_topology
from training.ensemble import AveragingEnsemble, StackingEnsemble, export_ensemble
from training.families import get_family


def rows_per_second(model_bytes: bytes, X: np.ndarray, batch: int, seconds: float = 1.5) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    chunks = [X[i : i + batch] for i in range(0, len(X) - batch + 1, batch)] or [X[:batch]]
    for c in chunks[:5]:
        sess.run(None, {"input": c})
    rows, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        c = chunks[i % len(chunks)]
        sess.run(None, {"input": c})
        rows += len(c)
        i += 1
    return rows / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")

    family = get_family("mlp")
    totals = []
    for _ in range(2):  # the first fit includes torch's one-time warm-up
        mlp = make_mlp(dict(family.defaults), 0)
        start = time.perf_counter()
        with threadpool_limits(1):
            mlp.fit(Xtr, ytr)
        totals.append(time.perf_counter() - start)
    per_epoch = [row["seconds"] for row in mlp.history_]
    mean, median = statistics.mean(per_epoch), statistics.median(per_epoch)
    print(f"default MLP (2x128 relu, adam 1e-3, batch 32) on breast_cancer ({len(Xtr)} training rows):")
    print(f"  epochs run {mlp.n_epochs_} (best {mlp.best_epoch_}, {mlp.stop_reason_})")
    print(f"  seconds per epoch: mean {mean:.4f}, median {median:.4f}")
    print(f"  total fit seconds: {totals[1]:.2f} (first fit incl. torch warm-up {totals[0]:.2f}); "
          f"test accuracy {mlp.score(Xte, yte):.4f}")

    with threadpool_limits(1):
        stack = StackingEnsemble(members=("logistic_regression", "random_forest", "naive_bayes"), k=10)
        t0 = time.perf_counter()
        stack.fit(Xtr, ytr)
        stack_fit = time.perf_counter() - t0
        single = AveragingEnsemble(members=("logistic_regression", "logistic_regression")).fit(Xtr, ytr)
    lr = single.members_[0]
    lr_graph = lr.exporter(lr.estimator, X.shape[1], 2, "proba").model.SerializeToString()
    graphs = {
        "logistic_regression (single)": lr_graph,
        "mlp (single)": onnx_bytes(export_mlp(mlp)),
        "stacking lr+rf+nb, k=10": onnx_bytes(export_ensemble(stack)),
    }
    print(f"stacking fit seconds (10 folds x 3 members + refit): {stack_fit:.2f}; "
          f"beats every member: {stack.report_['beats_every_member']}")
    Xf = np.tile(Xte, (8, 1)).astype(np.float32)
    print("ONNX Runtime inference, rows/s (1 thread):")
    print(f"  {'graph':32s} {'bytes':>9s} {'batch 1':>12s} {'batch 256':>12s}")
    for name, graph in graphs.items():
        r1 = rows_per_second(graph, Xf, 1)
        r256 = rows_per_second(graph, Xf, 256)
        print(f"  {name:32s} {len(graph):9d} {r1:12.0f} {r256:12.0f}")
    topology_rows()


def _timed_fit(est, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray
               ) -> tuple[float, float, bytes]:
    with threadpool_limits(1):
        est.fit(X, y)
    per_epoch = statistics.median(row["seconds"] for row in est.history_)
    return per_epoch, float(np.mean(est.predict(X_test) == y_test)), onnx_bytes(export_mlp(est))


def topology_rows(epochs: int = 20) -> None:
    """Seconds per epoch and ONNX rows/s of each topology vs the MLP on the same rows (``epochs`` each)."""
    print(f"topologies vs the MLP on the same rows ({epochs} epochs each, 1 thread; load average "
          f"{os.getloadavg()[0]:.2f}):")
    print(f"  {'topology':22s} {'s/epoch':>8s} {'x MLP':>6s} {'acc':>6s} {'MLP acc':>7s} "
          f"{'rows/s b1':>10s} {'x MLP':>6s} {'rows/s b256':>11s} {'x MLP':>6s}")
    for topology, data in (("cnn", "digits"), ("gru", "sequences"), ("multi", "mixed_inputs")):
        ds = load_dataset(data, 0)
        X = ds.X.astype(np.float32)
        Xtr, Xte, ytr, yte = train_test_split(X, ds.y, test_size=0.3, random_state=0, stratify=ds.y)
        est = make_topology(topology, {"epochs": epochs, "patience": epochs}, 0).set_params(
            inputs=ds.inputs, feature_names=tuple(ds.feature_names))
        mlp = make_mlp({"epochs": epochs, "patience": epochs}, 0)
        ours, theirs = _timed_fit(est, Xtr, ytr, Xte, yte), _timed_fit(mlp, Xtr, ytr, Xte, yte)
        Xf = np.tile(Xte, (4, 1))
        speed = [(rows_per_second(g, Xf, 1), rows_per_second(g, Xf, 256)) for g in (ours[2], theirs[2])]
        print(f"  {topology + ' (' + data + ')':22s} {ours[0]:8.4f} {ours[0] / theirs[0]:6.2f} "
              f"{ours[1]:6.3f} {theirs[1]:7.3f} {speed[0][0]:10.0f} {speed[0][0] / speed[1][0]:6.2f} "
              f"{speed[0][1]:11.0f} {speed[0][1] / speed[1][1]:6.2f}")


if __name__ == "__main__":
    main()
