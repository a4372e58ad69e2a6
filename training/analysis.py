"""Error analysis of a trained bundle on a labeled CSV, run through the bundle's own ONNX graph.

- sliced metrics per segment value (``segment`` column);
- error clusters: k-means on standardized features of the labeled rows; per cluster the error rate and
  the share of all errors, sorted by the possible gain (accuracy points won if that cluster's errors
  were fixed = cluster errors / labeled rows);
- a 2-D PCA scatter PNG, correct vs incorrect markers;
- likely wrong labels: confident disagreements between the model and the label;
- rows most worth labeling: unlabeled rows (empty target) whose scores are nearest the decision
  threshold (binary: |p1 - threshold|; multiclass: top-1 minus top-2 probability);
- training rows: rows of the CSV whose features are those of a row the model or its calibrator saw
  (the train, validation and calibration splits, by the per-row digests in the bundle's reference.npz):
  their errors are fewer than on new data, so the report says how many there are and warns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from cascade_registry.artifacts import REFERENCE_FILE, ModelBundle
from training.errors import DeepConfigError, DeepTrainingError
from training.figures import save_png
from training.splits import feature_digests

__all__ = ["AnalysisReport", "analyze_bundle", "class_indices", "format_analysis", "plot_pca"]

CONFIDENT = 0.9


class AnalysisReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    rows: int
    labeled_rows: int
    accuracy: float
    errors: int
    threshold: float | None
    slices: dict[str, dict[str, Any]]
    clusters: list[dict[str, Any]]
    likely_wrong_labels: list[dict[str, Any]]
    worth_labeling: list[dict[str, Any]]
    worth_labeling_pool: str
    pca_png: str | None
    #: rows of the CSV the model or its calibrator saw in training (None: the bundle has no row digests)
    training_rows: int | None = None
    #: their row numbers (the first ``top``)
    training_row_examples: list[int] = []
    warnings: list[str] = []


def _load(bundle: Path, csv: Path, target: str, segment: str | None) -> tuple[Any, pd.DataFrame]:
    card = ModelBundle.load(bundle).card
    if not csv.is_file():
        raise DeepTrainingError(f"{csv} does not exist or is not a file", "pass the path of a CSV file")
    try:
        df = pd.read_csv(csv)
    except (ValueError, UnicodeDecodeError) as e:
        raise DeepTrainingError(f"{csv} is not a readable CSV: {e}", "save it as UTF-8 CSV") from None
    needed = [*card.feature_names, target] + ([segment] if segment else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DeepTrainingError(
            f"{csv} lacks the column(s) {missing} that {card.ref} needs",
            f"the CSV must hold the model's {len(card.features)} feature columns (card.features) "
            f"and the target column {target!r}",
        )
    return card, df


def class_indices(values: pd.Series, names: list[str]) -> np.ndarray | None:
    """Labels as class indices: by class name, else (all integers in range) as indices; None if neither."""
    text = values.astype(str).str.strip()
    text = text.where(text.isin(names), text.str.replace(r"\.0$", "", regex=True))
    if text.isin(names).all():
        return np.array([names.index(v) for v in text])
    if text.str.fullmatch(r"\d+").all() and text.astype(int).lt(len(names)).all():
        return text.astype(int).to_numpy()
    return None


def _run_onnx(bundle: Path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(bundle / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", "probabilities"], {"input": X.astype(np.float32)})
    return label.astype(np.int64), proba.astype(np.float64)


def _seen_rows(bundle: Path, X: np.ndarray) -> np.ndarray | None:
    """Row numbers of ``X`` whose feature digest is one of the training rows' (None: no digests stored,
    a bundle written before they were)."""
    with np.load(bundle / REFERENCE_FILE, allow_pickle=False) as ref:
        if "seen_row_digests" not in ref.files:
            return None
        seen = ref["seen_row_digests"]
    return np.flatnonzero(np.isin(feature_digests(X), seen))


def _training_row_warning(ref: str, seen: np.ndarray | None, rows: int) -> list[str]:
    if seen is None:
        return [f"{ref}'s reference.npz has no row digests (an older bundle): whether these rows include "
                "training rows cannot be told"]
    if not len(seen):
        return []
    return [f"{len(seen)} of {rows} rows were used to train or calibrate {ref} (its train, validation or "
            "calibration split): their errors are fewer than on new data; analyze rows the model never "
            "saw, e.g. its test split or newer data"]


def _metrics(y: np.ndarray, pred: np.ndarray, total_errors: int) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    errors = int(np.sum(pred != y))
    return {
        "rows": int(len(y)),
        "accuracy": round(float(np.mean(pred == y)), 6) if len(y) else float("nan"),
        "error_rate": round(errors / len(y), 6) if len(y) else float("nan"),
        "errors": errors,
        "share_of_errors": round(errors / total_errors, 6) if total_errors else 0.0,
        "f1_macro": round(float(f1_score(y, pred, average="macro", zero_division=0)), 6),
    }


def _clusters(X: np.ndarray, wrong: np.ndarray, n_clusters: int, seed: int) -> tuple[list[dict], np.ndarray]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    k = max(1, min(n_clusters, len(X) // 5))
    Z = StandardScaler().fit_transform(X)
    assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(Z)
    total = max(int(wrong.sum()), 1)
    out = []
    for c in range(k):
        rows = assign == c
        errs = int(wrong[rows].sum())
        out.append({
            "cluster": c, "rows": int(rows.sum()), "errors": errs,
            "error_rate": round(errs / max(int(rows.sum()), 1), 6),
            "share_of_errors": round(errs / total, 6),
            "possible_gain": round(errs / len(X), 6),
        })
    out.sort(key=lambda r: (-r["possible_gain"], r["cluster"]))
    return out, assign


def plot_pca(X: np.ndarray, wrong: np.ndarray, path: Path, title: str) -> Path:
    """2-D PCA of standardized features; correct 'o', incorrect 'x'. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    P = PCA(n_components=2, random_state=0).fit_transform(StandardScaler().fit_transform(X))
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(P[~wrong, 0], P[~wrong, 1], marker="o", s=12, alpha=0.5, label="correct")
    ax.scatter(P[wrong, 0], P[wrong, 1], marker="x", s=30, color="red", label="incorrect")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path)


def _features(df: pd.DataFrame, names: list[str], csv: Path) -> np.ndarray:
    """The feature columns as float64; a clear error for non-numeric or missing values."""
    try:
        X = df[names].to_numpy(dtype=np.float64)
    except ValueError as e:
        raise DeepTrainingError(f"{csv}: the feature columns must be numeric: {e}", "clean the CSV") from None
    if not np.all(np.isfinite(X)):
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise DeepTrainingError(f"{csv}: {bad} rows have missing or infinite feature values",
                                "drop or impute them first")
    return X


def _labels(df: pd.DataFrame, target: str, card: Any, csv: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the labeled rows, their class indices); a clear error for unknown classes or < 2 rows."""
    labeled = df[target].notna().to_numpy() & (df[target].astype(str).str.strip() != "").to_numpy()
    names = [str(c) for c in card.classes]
    y = class_indices(df.loc[labeled, target], names)
    if y is None:
        unknown = sorted(set(df.loc[labeled, target].astype(str)) - set(names))
        raise DeepTrainingError(f"{csv}: target values {unknown[:5]} are not classes of {card.ref} {names}",
                                "use the class names the model was trained with")
    if labeled.sum() < 2:
        raise DeepTrainingError(f"{csv} has {int(labeled.sum())} labeled rows", "provide at least 2")
    return labeled, y


def _likely_wrong(y: np.ndarray, pred: np.ndarray, Pl: np.ndarray, rows: np.ndarray, names: list[str],
                  top: int) -> list[dict[str, Any]]:
    """The most confident disagreements with the label (confidence >= :data:`CONFIDENT`)."""
    conf = Pl[np.arange(len(pred)), pred]
    suspects = np.flatnonzero((pred != y) & (conf >= CONFIDENT))
    suspects = suspects[np.argsort(-conf[suspects], kind="stable")][:top]
    return [{"row": int(rows[i]), "label": names[y[i]], "model_says": names[pred[i]],
             "confidence": round(float(conf[i]), 6)} for i in suspects]


def _worth_labeling(proba: np.ndarray, label_idx: np.ndarray, labeled: np.ndarray, names: list[str],
                    threshold: float | None, top: int) -> tuple[list[dict[str, Any]], str]:
    """The rows nearest the decision boundary, unlabeled ones first; and which pool they came from."""
    if len(names) == 2:
        margin = np.abs(proba[:, 1] - (threshold if threshold is not None else 0.5))
    else:
        srt = np.sort(proba, axis=1)
        margin = srt[:, -1] - srt[:, -2]
    pool = np.flatnonzero(~labeled)
    pool_name = "unlabeled rows (empty target)"
    if pool.size == 0:
        pool, pool_name = np.arange(len(proba)), "all rows (the CSV has no unlabeled rows)"
    pick = pool[np.argsort(margin[pool], kind="stable")][:top]
    return [{"row": int(i), "margin": round(float(margin[i]), 6), "model_says": names[label_idx[i]]}
            for i in pick], pool_name


def analyze_bundle(bundle: Path | str, csv: Path | str, target: str, segment: str | None = None,
                   out_dir: Path | str | None = None, n_clusters: int = 6, top: int = 20,
                   seed: int = 0) -> AnalysisReport:
    """Analyze the errors of the bundle's ONNX model on ``csv``; PNG written to ``out_dir`` if given."""
    if not isinstance(n_clusters, int) or n_clusters < 1:
        raise DeepConfigError("clusters", n_clusters, "an integer >= 1")
    if not isinstance(top, int) or top < 1:
        raise DeepConfigError("top", top, "an integer >= 1")
    bundle, csv = Path(bundle), Path(csv)
    card, df = _load(bundle, csv, target, segment)
    X = _features(df, card.feature_names, csv)
    labeled, y = _labels(df, target, card, csv)
    names = [str(c) for c in card.classes]
    seen = _seen_rows(bundle, X)
    label_idx, proba = _run_onnx(bundle, X)
    pred, Xl, Pl = label_idx[labeled], X[labeled], proba[labeled]
    wrong = pred != y
    total = int(wrong.sum())
    slices: dict[str, dict[str, Any]] = {}
    if segment:
        seg = df.loc[labeled, segment].astype(str).to_numpy()
        for value in sorted(set(seg)):
            m = seg == value
            slices[value] = _metrics(y[m], pred[m], total)
    clusters, _ = _clusters(Xl, wrong, n_clusters, seed)
    threshold = card.recommended_threshold if len(names) == 2 else None
    worth, pool_name = _worth_labeling(proba, label_idx, labeled, names, threshold, top)
    png = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        png = str(plot_pca(Xl, wrong, out / "pca_errors.png", f"{card.ref}: errors in PCA space"))
    return AnalysisReport(
        model=str(card.ref), rows=len(df), labeled_rows=int(labeled.sum()),
        accuracy=round(float(np.mean(~wrong)), 6), errors=total, threshold=threshold, slices=slices,
        clusters=clusters,
        likely_wrong_labels=_likely_wrong(y, pred, Pl, np.flatnonzero(labeled), names, top),
        worth_labeling=worth, worth_labeling_pool=pool_name, pca_png=png,
        training_rows=None if seen is None else len(seen),
        training_row_examples=[] if seen is None else [int(i) for i in seen[:top]],
        warnings=_training_row_warning(str(card.ref), seen, len(df)),
    )


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    if not rows:
        return ["  (none)"]
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  " + "  ".join(c.ljust(width[c]) for c in columns)]
    lines += ["  " + "  ".join(str(r.get(c, "")).ljust(width[c]) for c in columns) for r in rows]
    return lines


def format_analysis(report: AnalysisReport) -> str:
    """Readable tables for the terminal."""
    lines = [f"model {report.model}: {report.labeled_rows} labeled of {report.rows} rows, "
             f"accuracy {report.accuracy:.4f}, {report.errors} errors"]
    if report.slices:
        lines.append("\nslices:")
        lines += _table([{"segment": k, **v} for k, v in report.slices.items()],
                        ["segment", "rows", "accuracy", "error_rate", "errors", "share_of_errors",
                         "f1_macro"])
    lines.append("\nerror clusters (k-means on standardized features), by possible gain:")
    lines += _table(report.clusters, ["cluster", "rows", "errors", "error_rate", "share_of_errors",
                                      "possible_gain"])
    lines.append(f"\nlikely wrong labels (model confidence >= {CONFIDENT}):")
    lines += _table(report.likely_wrong_labels, ["row", "label", "model_says", "confidence"])
    lines.append(f"\nrows most worth labeling ({report.worth_labeling_pool}), "
                 "nearest the decision threshold:")
    lines += _table(report.worth_labeling, ["row", "margin", "model_says"])
    if report.pca_png:
        lines.append(f"\nPCA scatter: {report.pca_png}")
    return "\n".join(lines)
