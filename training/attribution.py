"""Error attribution of a cascade by stage (ceiling analysis, chapter 6.6.4).

The downstream model is scored on labelled rows three ways: as deployed (every upstream's output computed
by its pinned graph); with one upstream's output replaced by the perfect one (from its true label: a
one-hot probability row, or the label itself), for each upstream in turn; and with every upstream perfect.
The error an upstream's perfect output removes is the downstream error that stage is responsible for; what
is left with every upstream perfect is the downstream model's own. The table and a bar chart say it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from cascade_registry.artifacts import FeatureSpec, ModelCard
from training.analysis import class_indices
from training.errors import DataError
from training.figures import save_png
from training.tables import TableOverrides, typed_columns
from training.upstream import Upstream, output_columns, perfect_columns, run_graph

__all__ = ["AttributionReport", "StageRow", "attribute_errors", "format_attribution", "frame_columns",
           "plot_attribution"]


class StageRow(BaseModel):
    """One stage: the downstream's error with that stage's output perfect, and the share it removes."""

    model_config = ConfigDict(frozen=True)

    stage: str
    kind: str  # "upstream" (its output made perfect) | "downstream" (every upstream perfect: what is left)
    upstream_accuracy: float | None  # the upstream's own accuracy on its true label
    error_rate: float  # the downstream's error rate in this scenario
    errors: int
    error_removed: float | None  # upstream: error-rate points its perfect output removes; downstream: None
    share_of_error: float  # of the downstream's error as deployed


class AttributionReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    rows: int
    target: str
    truth: dict[str, str]  # upstream name -> column holding its true label
    accuracy: float  # the downstream as deployed
    error_rate: float
    errors: int
    stages: list[StageRow]
    png: str | None


def frame_columns(frame: pd.DataFrame, specs: Sequence[FeatureSpec], source: str) -> dict[str, np.ndarray]:
    """The columns ``specs`` names, read from ``frame`` as the card types them (numeric, categorical,
    boolean); raises :class:`DataError` for a missing column or a column of another kind."""
    missing = [s.name for s in specs if s.name not in frame.columns]
    if missing:
        raise DataError(f"{source} lacks the column(s) {missing[:8]} the model reads",
                        "the CSV must hold every raw feature column of the model (card.features)")
    overrides = TableOverrides(categorical=tuple(s.name for s in specs if s.kind == "categorical"),
                               numeric=tuple(s.name for s in specs if s.kind == "numeric"))
    typed = typed_columns(frame[[s.name for s in specs]], [], overrides, source)
    kinds = {s.name: s.kind for s in specs}
    wrong = [f"{c.name} ({c.kind}, expected {kinds[c.name]})" for c in typed if c.kind != kinds[c.name]]
    if wrong:
        raise DataError(f"{source}: columns of another kind than the model's: {', '.join(wrong)}",
                        "write booleans as true/false in those columns")
    return {c.name: c.values for c in typed}


def _truth(frame: pd.DataFrame, up: Upstream, column: str, source: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(f"{source} has no column {column!r} (--upstream-truth {up.ref.name}={column})",
                        f"name the column holding {up.ref.name}'s true label")
    values = frame[column]
    if values.isna().any():
        raise DataError(f"{source}: {int(values.isna().sum())} rows have no true label in {column!r}",
                        "drop those rows or fill in their labels")
    idx = class_indices(values, up.card.classes)
    if idx is None:
        unknown = sorted(set(values.astype(str)) - set(up.card.classes))[:5]
        raise DataError(f"{source}: {column!r} holds {unknown}, not classes of {up.ref} {up.card.classes}",
                        f"the column must hold {up.ref.name}'s class names")
    return idx


def _downstream_errors(onnx_bytes: bytes, card: ModelCard, raw: Mapping[str, np.ndarray],
                       fed: Mapping[str, list], y: np.ndarray) -> int:
    inputs = dict(raw)
    for columns in fed.values():
        inputs.update({name: values for name, _, values in columns})
    labels, _ = run_graph(onnx_bytes, card, inputs)
    return int(np.sum(labels != y))


def attribute_errors(onnx_bytes: bytes, card: ModelCard, upstreams: Sequence[Upstream], frame: pd.DataFrame,
                     target: str, truth: Mapping[str, str], source: str, out_dir: Path | None = None
                     ) -> AttributionReport:
    """The attribution table of the cascade ``upstreams`` -> ``card`` on the labelled ``frame``."""
    if target not in frame.columns:
        raise DataError(f"{source} has no target column {target!r}", "pass --target naming b's label column")
    y = class_indices(frame[target], card.classes)
    if y is None or frame[target].isna().any():
        raise DataError(f"{source}: {target!r} must hold {card.ref}'s classes {card.classes} on every row",
                        "drop unlabelled rows first")
    raw = frame_columns(frame, [f for f in card.features if f.upstream is None], source)
    runs = {u.ref.name: run_graph(u.onnx_bytes, u.card, raw) for u in upstreams}
    real = {u.ref.name: output_columns(u, *runs[u.ref.name]) for u in upstreams}
    truths = {u.ref.name: _truth(frame, u, truth[u.ref.name], source) for u in upstreams}
    perfect = {u.ref.name: perfect_columns(u, truths[u.ref.name]) for u in upstreams}
    n = len(y)
    base = _downstream_errors(onnx_bytes, card, raw, real, y)
    stages = []
    for u in upstreams:
        labels = runs[u.ref.name][0]
        errs = _downstream_errors(onnx_bytes, card, raw, real | {u.ref.name: perfect[u.ref.name]}, y)
        stages.append(_row(f"{u.ref} ({u.output})", "upstream", float(np.mean(labels == truths[u.ref.name])),
                           errs, base, n))
    own = _downstream_errors(onnx_bytes, card, raw, perfect, y)
    stages.append(_row(f"{card.ref} itself", "downstream", None, own, base, n))
    report = AttributionReport(model=str(card.ref), rows=n, target=target, truth=dict(truth),
                               accuracy=round(1 - base / n, 6), error_rate=round(base / n, 6), errors=base,
                               stages=stages, png=None)
    if out_dir is None:
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_attribution(report, out_dir / "attribution.png")
    return report.model_copy(update={"png": str(png)})


def _row(stage: str, kind: str, upstream_accuracy: float | None, errors: int, base: int, n: int) -> StageRow:
    upstream = kind == "upstream"
    share = (base - errors if upstream else errors) / base if base else 0.0
    return StageRow(stage=stage, kind=kind,
                    upstream_accuracy=None if upstream_accuracy is None else round(upstream_accuracy, 6),
                    error_rate=round(errors / n, 6), errors=errors,
                    error_removed=round((base - errors) / n, 6) if upstream else None,
                    share_of_error=round(share, 6))


def plot_attribution(report: AttributionReport, path: Path) -> Path:
    """Horizontal bars: the share of the downstream's error each stage is responsible for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.stage for s in report.stages]
    shares = [100 * s.share_of_error for s in report.stages]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * len(names)))
    colors = ["tab:orange" if s.kind == "upstream" else "tab:blue" for s in report.stages]
    ax.barh(names[::-1], shares[::-1], color=colors[::-1])
    for i, v in enumerate(shares[::-1]):
        ax.text(v, i, f" {v:.1f}%", va="center")
    ax.set_xlabel(f"share of {report.model}'s error ({report.errors} of {report.rows} rows wrong)")
    ax.set_xlim(min(0.0, *shares), max(100.0, *shares) * 1.15)
    ax.set_title(f"{report.model}: error by stage (each upstream made perfect in turn)")
    fig.tight_layout()
    return save_png(fig, path)


def format_attribution(report: AttributionReport) -> str:
    """The table for the terminal."""
    labels = [s.stage if s.kind == "upstream" else f"{s.stage} (all upstreams perfect)"
              for s in report.stages]
    w = max(len("stage"), *(len(x) for x in labels))
    lines = [f"model {report.model} on {report.rows} labelled rows: accuracy {report.accuracy:.4f}, "
             f"error rate {report.error_rate:.4f} ({report.errors} errors) as deployed",
             f"  {'stage':<{w}}  {'stage accuracy':>14}  {'error if perfect':>16}  {'share of error':>14}"]
    for label, s in zip(labels, report.stages, strict=True):
        acc = "" if s.upstream_accuracy is None else f"{s.upstream_accuracy:.4f}"
        lines.append(f"  {label:<{w}}  {acc:>14}  {s.error_rate:>16.4f}  {100 * s.share_of_error:>13.1f}%")
    lines.append("  (an upstream's share: the error its perfect output removes; the downstream's: the error "
                 "left when every upstream is perfect)")
    if report.png:
        lines.append(f"bar chart: {report.png}")
    return "\n".join(lines)
