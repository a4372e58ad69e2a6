"""Checks on card.json (issue check 9): it parses; every reproducibility field is present and plausible."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from cascade_registry.artifacts import CARD_FILE, CheckResult, ModelCard
from safety.checks.base import outcome
from safety.context import GateContext
from safety.policy import GatePolicy

__all__ = ["CardCompletenessCheck", "CardSchemaCheck", "card_problems"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CardSchemaCheck:
    name = "card.schema"
    requires: tuple[str, ...] = ()
    description = "card.json exists and matches the ModelCard schema"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        card = ctx.card_or_none
        if card is None:
            return outcome(self, "fail", ctx.card_error or f"{CARD_FILE} is unusable")
        return outcome(
            self,
            "pass",
            value=str(card.ref),
            message=f"{card.task}, {len(card.classes)} classes, {len(card.features)} features",
        )


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def card_problems(card: ModelCard) -> list[str]:
    """Every missing or implausible reproducibility field, as readable phrases."""
    p: list[str] = []
    names = [f.name for f in card.features]
    if len(set(names)) != len(names):
        p.append("features: duplicate names")
    for f in card.numeric_features:
        if f.min is None or f.max is None or f.mean is None or f.std is None:
            p.append(f"features.{f.name}: a numeric column needs min/max/mean/std")
            break
        if not _finite(f.min, f.max, f.mean, f.std) or f.min > f.max or f.std < 0:
            p.append(f"features.{f.name}: min/max/mean/std are not finite with min <= max and std >= 0")
            break
    if len(set(card.classes)) != len(card.classes):
        p.append("classes: duplicates")
    if (card.task == "binary") != (len(card.classes) == 2):
        p.append(f"task {card.task!r} does not fit {len(card.classes)} classes")
    ds = card.dataset
    if not _SHA256.match(ds.sha256):
        p.append("dataset.sha256 is not a sha256 hex digest")
    if ds.n_features != len(card.features):
        p.append(f"dataset.n_features {ds.n_features} != {len(card.features)} features")
    for split in ("train", "test"):
        if split not in ds.splits or ds.splits[split].rows <= 0:
            p.append(f"dataset.splits lacks a non-empty {split!r} split")
    if any(not _SHA256.match(s.sha256) for s in ds.splits.values()):
        p.append("dataset.splits: a split has no sha256 digest")
    if not ds.splits_disjoint:
        p.append("dataset.splits_disjoint is false (train and test overlap)")
    if not card.hyperparameters:
        p.append("hyperparameters is empty")
    s = card.search
    if s.trials < 1 or not s.candidates:
        p.append("search: no trials recorded")
    if not s.ranges:
        p.append("search.ranges is empty (the hyperparameter ranges tried)")
    if not s.metric or not s.selection or not s.method:
        p.append("search: method, metric or selection is empty")
    cal = card.calibration
    for label, m in (("before", cal.before), ("after", cal.after)):
        if not _finite(m.ece, m.brier, m.log_loss) or not 0 <= m.ece <= 1:
            p.append(f"calibration.{label}: ECE/Brier/log-loss not finite or ECE outside [0, 1]")
    if cal.method != "none" and cal.holdout_rows <= 0:
        p.append("calibration.holdout_rows must be > 0 for a calibrated model")
    m = card.metrics
    if m.rows <= 0:
        p.append("metrics.rows must be > 0")
    if not all(
        _finite(v) and 0 <= v <= 1 for v in (m.accuracy, m.f1_macro, m.precision_macro, m.recall_macro)
    ):
        p.append("metrics: accuracy/f1/precision/recall must lie in [0, 1]")
    n = len(card.classes)
    if len(m.confusion_matrix) != n or any(len(row) != n for row in m.confusion_matrix):
        p.append(f"metrics.confusion_matrix is not {n}x{n}")
    elif sum(map(sum, m.confusion_matrix)) != m.rows:
        p.append("metrics.confusion_matrix does not add up to metrics.rows")
    if card.task == "binary" and (
        card.recommended_threshold is None or not 0 < card.recommended_threshold < 1
    ):
        p.append("recommended_threshold must lie in (0, 1) for a binary model")
    e = card.export
    if not _SHA256.match(e.onnx_sha256):
        p.append("export.onnx_sha256 is not a sha256 hex digest")
    if not e.opset or not e.converter:
        p.append("export: opset or converter missing")
    if e.parity_rows <= 0 or not _finite(e.parity_max_abs_diff) or e.parity_max_abs_diff > e.parity_limit:
        p.append("export: parity not measured or above its limit")
    inf = card.infrastructure
    if inf.cores < 1 or inf.ram_gb <= 0 or not inf.python or not inf.libraries or not inf.os:
        p.append("infrastructure: cores, RAM, OS, Python or library versions missing")
    r = card.runtime
    if not _finite(r.total_seconds) or r.total_seconds < 0 or r.search_seconds > r.total_seconds + 1e-6:
        p.append("runtime: total_seconds missing or smaller than search_seconds")
    c = card.cost
    if not _finite(c.core_hours, c.estimated_cost) or c.core_hours < 0 or c.estimated_cost < 0:
        p.append("cost: core_hours/estimated_cost must be >= 0")
    if not card.how_to_consume.strip():
        p.append("how_to_consume is empty")
    created = card.created_at if card.created_at.tzinfo else card.created_at.replace(tzinfo=UTC)
    if created > datetime.now(UTC) + timedelta(days=1):
        p.append("created_at lies in the future")
    return p


class CardCompletenessCheck:
    name = "card.completeness"
    requires = ("card.schema",)
    description = "every reproducibility field of the card is present and plausible"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        problems = card_problems(ctx.card)
        if problems:
            more = f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""
            return outcome(self, "fail", "; ".join(problems[:6]) + more, value=len(problems), limit=0)
        return outcome(self, "pass", value=0, limit=0, message="all reproducibility fields plausible")
