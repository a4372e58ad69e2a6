"""Production feedback in the registry (SQLite and PostgreSQL): captured predictions, labels joined by
request id, row and consumer, and drift checks marking a version stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cascade_registry.capture import CapturedPrediction, FeedbackLabel
from cascade_registry.errors import InvalidInputError, NotFoundError

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _capture(
    request_id: str,
    row: int = 0,
    consumer: str = "shop",
    role: str = "live",
    minutes: int = 0,
    version: int = 1,
) -> CapturedPrediction:
    return CapturedPrediction(
        request_id=request_id,
        row=row,
        model="a",
        version=version,
        consumer=consumer,
        role=role,
        at=T0 + timedelta(minutes=minutes),
        inputs=[1.5, None, 3.0],
        label="yes",
        probabilities=[0.25, 0.75],
        latency_ms=1.25,
    )


def _label(request_id: str, label: str, row: int = 0, consumer: str = "shop") -> FeedbackLabel:
    return FeedbackLabel(request_id=request_id, row=row, label=label, consumer=consumer, at=T0)


def test_captures_are_appended_without_a_generation_bump_and_read_by_window(registry) -> None:
    before = registry.generation()
    rows = [_capture("r1", 0), _capture("r1", 1), _capture("r2", minutes=5), _capture("r1", 0, role="shadow")]
    assert registry.record_captures(rows) == 4
    assert registry.record_captures(rows[:2]) == 0  # a repeat of request id, row and role is ignored
    assert registry.generation() == before  # captures do not make gateways reload
    got = registry.captured("a")
    assert [(r.request_id, r.row, r.role) for r in got][-1] == ("r2", 0, "live")
    assert got[0].inputs == [1.5, None, 3.0] and got[0].probabilities == [0.25, 0.75]
    assert got[0].at.tzinfo is not None
    assert len(registry.captured("a", role="live")) == 3
    assert [r.request_id for r in registry.captured("a", since=T0 + timedelta(minutes=1))] == ["r2"]
    assert len(registry.captured("a", limit=2)) == 2
    assert registry.captured("a", version=2) == []
    with pytest.raises(InvalidInputError):
        registry.captured("a", limit=0)


def test_labels_join_the_same_consumers_predictions_and_the_last_label_wins(registry) -> None:
    registry.record_captures([_capture("r1", 0), _capture("r1", 1), _capture("r2", consumer="web")])
    registry.record_labels([_label("r1", "no"), _label("r1", "yes", row=1)])
    registry.record_labels([_label("r1", "yes")])  # a correction replaces the first label
    registry.record_labels([_label("r2", "no", consumer="shop")])  # shop cannot label web's request
    joined = registry.labelled("a")
    assert [(j.prediction.request_id, j.prediction.row, j.truth) for j in joined] == [
        ("r1", 0, "yes"),
        ("r1", 1, "yes"),
    ]
    assert all(j.prediction.consumer == "shop" for j in joined)


def test_request_ids_are_bounded_safe_tokens() -> None:
    with pytest.raises(ValueError, match="request_id"):
        _capture("../../etc/passwd")
    with pytest.raises(ValueError, match="request_id"):
        _label("x" * 65, "yes")


def test_a_drift_check_marks_the_version_stale_and_is_audited(registry, make_bundle) -> None:
    ref = registry.register(make_bundle("a", 1)).ref
    before = registry.generation()
    calm = registry.mark_drift(
        ref, "no drift", {"f0": {"auc": 0.5}}, auc=0.52, threshold=0.7, rows=80, stale=False
    )
    assert not calm.stale and not registry.get(ref).stale
    registry.mark_drift(
        ref, "drift on live traffic: AUC 0.91", {"f0": {"auc": 0.9}}, auc=0.91, threshold=0.7, rows=80
    )
    info = registry.get(ref)
    assert info.stale and info.stale_reason == "drift on live traffic: AUC 0.91"
    assert registry.generation() > before  # the gateways reload and /readyz shows it
    checks = registry.drift_checks("a", 1)
    assert [c.stale for c in checks] == [False, True] and checks[1].figures == {"f0": {"auc": 0.9}}
    assert [e.action for e in registry.audit("a")][-2:] == ["drift_check", "drift_check"]
    with pytest.raises(NotFoundError):
        registry.mark_drift("a:9", "x", {}, auc=0.9, threshold=0.7, rows=80)


def test_prune_deletes_old_captures_and_their_orphaned_labels_in_one_audited_transaction(registry) -> None:
    now = datetime.now(UTC)
    month_ago = now - timedelta(days=40)

    def at(row: CapturedPrediction, when: datetime, model: str = "a") -> CapturedPrediction:
        return row.model_copy(update={"at": when, "model": model})

    registry.record_captures([
        at(_capture("old", 0), month_ago), at(_capture("old", 1), month_ago),  # a: gone after 30 days
        at(_capture("new"), now),                                            # a: stays
        at(_capture("other"), month_ago, model="b"),                         # b: stays unless all go
    ])
    registry.record_labels([
        _label("old", "no").model_copy(update={"at": month_ago}),    # orphaned when a's old rows go
        _label("new", "yes").model_copy(update={"at": month_ago}),   # old, but its prediction stays
        _label("other", "no").model_copy(update={"at": month_ago}),
    ])
    counted = registry.prune_feedback(timedelta(days=30), "a", dry_run=True)
    assert (counted.captured, counted.labels, counted.dry_run) == (2, 1, True)
    assert len(registry.captured("a")) == 3, "a dry run deletes nothing"

    pruned = registry.prune_feedback(timedelta(days=30), "a")
    assert (pruned.captured, pruned.labels, pruned.dry_run) == (2, 1, False)
    assert [r.request_id for r in registry.captured("a")] == ["new"]
    assert [(j.prediction.request_id, j.truth) for j in registry.labelled("a")] == [("new", "yes")]
    assert [r.request_id for r in registry.captured("b")] == ["other"]
    entry = registry.audit()[-1]
    assert entry.action == "prune_feedback" and entry.subject == "a" and entry.details["captured"] == 2

    everything = registry.prune_feedback(timedelta(days=30))
    assert (everything.captured, everything.labels) == (1, 1)
    assert registry.captured("b") == [] and [r.request_id for r in registry.captured("a")] == ["new"]
    assert registry.prune_feedback(timedelta(days=30)).captured == 0  # nothing left to prune
    with pytest.raises(InvalidInputError):
        registry.prune_feedback(timedelta(0))
