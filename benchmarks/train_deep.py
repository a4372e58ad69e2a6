"""Benchmark: the default MLP on the demo data (breast_cancer), and ONNX inference of a stack vs one model;
transfer learning on digits (epochs and seconds to a target score, with vs without a parent).

Prints: seconds per epoch (mean, median) and in total for the default ``mlp`` family model; rows/s of ONNX
Runtime inference (1 thread) for the stacked ensemble (logistic regression + random forest + naive Bayes,
k=10) vs the single logistic-regression and MLP graphs, at batch sizes 1 and 256.

Topology rows (:func:`topology_rows`): per topology (cnn on digits, gru on the generated sequences, multi on
mixed_inputs) its seconds per epoch and ONNX rows/s, each as a ratio to the MLP trained and timed in the
same run on the same rows (flattened input), with both test accuracies; the load average is printed.

Multi-output: on the generated two-target table (``make_two_targets``: 3-class ``shape`` + ``size`` in
[0, 10]), fit seconds of the two-head MLP vs the single-head MLP on ``shape`` alone (same epochs), their
test scores, and ONNX Runtime rows/s of the two-output graph vs the single-output one.

Transfer: a 2x128 parent trained on digits 0-4; children on 100 rows of digits 5-9, validated on 400
others, from scratch vs ``--init-from`` (linear-probe head, then fine-tuning), 5 seeds: epochs and
seconds (probe included) until validation accuracy reaches 0.9.

    .venv/bin/python benchmarks/train_deep.py
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from training.calibration import NoCalibration
from training.datasets import load_dataset
from training.deep import export_mlp, onnx_bytes
from training.deep.estimator import MLPClassifier
from training.deep.family import make_mlp
from training.deep.multi_output import MultiOutputMLP, make_two_targets
from training.deep.multi_output_export import export_multi_output
from training.deep.topology_family import make_topology
from training.deep.transfer import TransferMLPClassifier, epochs_to_score, resolve_parent
from training.deep.weights import weights_bytes
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
    transfer()
    multi_output()
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
    cases = (("cnn", "digits"), ("gru", "sequences"), ("lstm", "sequences"), ("multi", "mixed_inputs"))
    for topology, data in cases:
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


def _time_to(model: TransferMLPClassifier, fit_seconds: float, target: float
             ) -> tuple[int | None, float | None]:
    """Epochs and seconds until validation accuracy reaches ``target`` (set-up before epoch 1 included)."""
    epochs = epochs_to_score(model.history_, target)
    if epochs is None:
        return None, None
    setup = fit_seconds - sum(row["seconds"] for row in model.history_)
    return epochs, setup + sum(row["seconds"] for row in model.history_[:epochs])


def transfer(target: float = 0.9, seeds: int = 5) -> None:
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    with threadpool_limits(1):
        parent = MLPClassifier(device="cpu", random_state=0).fit(X[y < 5], y[y < 5])
    path = Path(tempfile.mkdtemp()) / "weights.pt"
    path.write_bytes(weights_bytes(parent))
    param = resolve_parent(str(path), None).as_param()
    rows: dict[str, list[tuple[int | None, float | None]]] = {"scratch": [], "init-from": []}
    for seed in range(seeds):
        idx = np.flatnonzero(y >= 5)
        np.random.default_rng(seed).shuffle(idx)
        tr, va = idx[:100], idx[400:800]
        for name, extra in (("scratch", {}), ("init-from", {"parent": param})):
            model = TransferMLPClassifier(epochs=30, early_stopping=False, device="cpu", random_state=seed,
                                          **extra)
            t0 = time.perf_counter()
            with threadpool_limits(1):
                model.fit(X[tr], y[tr], X[va], y[va])
            rows[name].append(_time_to(model, time.perf_counter() - t0, target))
    print(f"transfer on digits (parent 2x128 on 0-4; child on 100 rows of 5-9; {seeds} seeds; "
          f"load average {os.getloadavg()[0]:.1f}): to validation accuracy {target}")
    means = {}
    for name, got in rows.items():
        reached = [g for g in got if g[0] is not None]
        epochs = statistics.mean(g[0] for g in reached) if reached else float("nan")
        seconds = statistics.mean(g[1] for g in reached) if reached else float("nan")
        means[name] = (epochs, seconds)
        print(f"  {name:10s} reached {len(reached)}/{seeds}  epochs {epochs:6.2f}  seconds {seconds:7.3f}  "
              f"per seed {[g[0] for g in got]}")
    (e0, s0), (e1, s1) = means["scratch"], means["init-from"]
    print(f"  ratio scratch / init-from: epochs {e0 / e1:.2f}x, seconds {s0 / s1:.2f}x")


def multi_output(n: int = 1200, epochs: int = 40) -> None:
    table = make_two_targets(n, seed=0)
    X = np.column_stack([table[f"x{j}"] for j in range(6)]).astype(np.float32)
    _, y = np.unique(table["shape"], return_inverse=True)
    z, cut = table["size"], int(0.8 * n)
    common = {"epochs": epochs, "early_stopping": False, "device": "cpu", "random_state": 0}
    with threadpool_limits(1):
        t0 = time.perf_counter()
        single = MLPClassifier(**common).fit(X[:cut], y[:cut])
        t1 = time.perf_counter()
        multi = MultiOutputMLP(gamma=0.5, kind2="regression", range2=(0.0, 10.0), **common).fit(
            X[:cut], y[:cut], z[:cut])
        t2 = time.perf_counter()
    cal = NoCalibration(3, "probability")
    mae = float(np.mean(np.abs(multi.predict_head2(X[cut:]) - z[cut:])))
    print(f"multi-output on make_two_targets ({cut} training rows, {epochs} epochs, load average "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"  fit seconds: single head {t1 - t0:.2f}, two heads {t2 - t1:.2f} "
          f"(ratio {(t2 - t1) / (t1 - t0):.2f}x)")
    print(f"  test: single-head accuracy {single.score(X[cut:], y[cut:]):.4f}; two-head accuracy "
          f"{multi.score(X[cut:], y[cut:]):.4f}, size MAE {mae:.3f} (range 0..10)")
    graphs = {"mlp (label, probabilities)": onnx_bytes(export_mlp(single)),
              "mlp 2 heads (+ size__value)": onnx_bytes(export_multi_output(multi, "size", cal, None))}
    Xf = np.tile(X[cut:], (4, 1))
    for name, graph in graphs.items():
        print(f"  {name:32s} rows/s batch 1 {rows_per_second(graph, Xf, 1):10.0f}  "
              f"batch 256 {rows_per_second(graph, Xf, 256):10.0f}")


if __name__ == "__main__":
    main()
