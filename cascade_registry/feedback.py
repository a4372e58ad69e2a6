"""The production-feedback part of :class:`~cascade_registry.registry.Registry` (mixed into it): captured
predictions, the labels consumers send back, and drift checks that mark a version stale.

    reg.record_captures([CapturedPrediction(...), ...])     # the gateway's capture writer
    reg.record_labels([FeedbackLabel(...), ...])            # POST /feedback, 'lockgate feedback import'
    reg.labelled("churn", version=3)                        # joined: what 'lockgate monitor' scores
    reg.mark_drift("churn:3", reason, figures, auc=..., threshold=..., rows=...)
    reg.prune_feedback(timedelta(days=30))                  # 'lockgate feedback prune --older-than 30d'
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cascade_registry.artifacts import ModelRef
from cascade_registry.capture import (
    CapturedPrediction,
    DriftCheck,
    FeedbackLabel,
    LabelledPrediction,
    PrunedFeedback,
)
from cascade_registry.errors import InvalidInputError
from cascade_registry.records import now
from cascade_registry.store import RegistryStore

__all__ = ["FeedbackMethods", "MAX_WINDOW_ROWS"]

#: the most rows one read returns (a window of captured traffic); more is a paging job, not a read
MAX_WINDOW_ROWS = 1_000_000
#: the most rows or labels one write takes
MAX_WRITE_ROWS = 100_000


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_WINDOW_ROWS:
        raise InvalidInputError(f"limit must be 1..{MAX_WINDOW_ROWS}, got {limit!r}", "e.g. limit=10000")
    return limit


def _batch(rows: list[Any], kind: type) -> list[Any]:
    if len(rows) > MAX_WRITE_ROWS:
        raise InvalidInputError(
            f"{len(rows)} rows in one write; the limit is {MAX_WRITE_ROWS}", "write them in batches"
        )
    bad = next((r for r in rows if not isinstance(r, kind)), None)
    if bad is not None:
        raise InvalidInputError(f"expected {kind.__name__} rows, got {type(bad).__name__}")
    return rows


class FeedbackMethods:
    """Mixed into :class:`~cascade_registry.registry.Registry` (which sets ``store``)."""

    store: RegistryStore

    def record_captures(self, rows: list[CapturedPrediction]) -> int:
        """Store captured predictions (a repeat of request id, row and role is ignored); the rows written."""
        return self.store.record_captures(_batch(rows, CapturedPrediction))

    def captured(
        self,
        model: str,
        version: int | None = None,
        role: str | None = None,
        since: datetime | None = None,
        limit: int = 10_000,
    ) -> list[CapturedPrediction]:
        """The newest ``limit`` captured predictions of ``model`` (a version, a role, since a time), oldest
        first."""
        return self.store.captured(model, version, role, since, _limit(limit))

    def record_labels(self, labels: list[FeedbackLabel]) -> int:
        """Store true labels (a consumer's repeat of a request id and row replaces its earlier label)."""
        return self.store.record_labels(_batch(labels, FeedbackLabel))

    def labelled(
        self,
        model: str,
        version: int | None = None,
        role: str | None = None,
        since: datetime | None = None,
        limit: int = 100_000,
    ) -> list[LabelledPrediction]:
        """Captured predictions joined to the label their own consumer sent, oldest first."""
        return self.store.labelled(model, version, role, since, _limit(limit))

    def labelled_requests(self, consumer: str, request_ids: list[str]) -> list[LabelledPrediction]:
        """The live captured predictions of these requests of ``consumer`` joined to its labels (what the
        gateway counts into its online-quality metrics when the labels arrive)."""
        return self.store.labelled_requests(consumer, _batch(request_ids, str))

    def mark_drift(
        self,
        ref: str | ModelRef,
        reason: str,
        figures: dict[str, Any],
        *,
        auc: float,
        threshold: float,
        rows: int,
        stale: bool = True,
        actor: str = "cli",
    ) -> DriftCheck:
        """Record a drift check of ``ref``; with ``stale`` the version is marked stale with ``reason`` (shown
        by 'registry show', 'registry impact' and the gateway's /readyz). Audited."""
        parsed = ref if isinstance(ref, ModelRef) else ModelRef.parse(str(ref))
        check = DriftCheck(
            model=parsed.name,
            version=parsed.version,
            at=now(),
            auc=auc,
            threshold=threshold,
            rows=rows,
            stale=stale,
            reason=reason,
            figures=figures,
            actor=actor,
        )
        return self.store.record_drift(check)

    def prune_feedback(
        self,
        older_than: timedelta,
        model: str | None = None,
        *,
        dry_run: bool = False,
        actor: str = "cli",
    ) -> PrunedFeedback:
        """Retention: delete the captured predictions older than ``older_than`` (of ``model``, else of every
        model) and the labels of that age left with no prediction to join. One transaction, audited;
        ``dry_run`` counts and deletes nothing. The gateway's capture budgets bound the rate of new rows,
        this bounds how long they stay."""
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise InvalidInputError(
                f"older_than must be a positive duration, got {older_than!r}", "e.g. timedelta(days=30)"
            )
        return self.store.prune_feedback(now() - older_than, model, dry_run, actor)

    def drift_checks(self, model: str, version: int | None = None) -> list[DriftCheck]:
        """Every drift check of ``model`` (one version), oldest first."""
        return self.store.drift_checks(model, version)
