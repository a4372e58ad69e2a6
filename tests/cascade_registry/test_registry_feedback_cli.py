"""``lockgate feedback import`` and the error paths of ``lockgate monitor`` (no gateway needed): labels
from a CSV joined to captured predictions, clear one-line errors and exit codes for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cascade_registry.capture import CapturedPrediction
from cascade_registry.feedback_cli import main as feedback
from training.monitor_cli import main as monitor


def _captures(registry, n: int = 3, days_ago: float = 0) -> None:
    registry.record_captures(
        [
            CapturedPrediction(
                request_id="req-1",
                row=i,
                model="a",
                version=1,
                consumer="shop",
                at=datetime.now(UTC) - timedelta(days=days_ago),
                inputs=[0.1, 0.2, 0.3],
                label="yes",
                probabilities=[0.2, 0.8],
                latency_ms=1.0,
            )
            for i in range(n)
        ]
    )


def test_feedback_import_joins_labels_by_request_id_and_row(
    registry, registry_url: str, tmp_path: Path
) -> None:
    registry.add_consumer("shop", owner="team-shop")
    _captures(registry)
    csv = tmp_path / "labels.csv"
    csv.write_text("request_id,row,label\nreq-1,0,yes\nreq-1,2,no\n")
    assert feedback(["import", str(csv), "--consumer", "shop", "--registry-url", registry_url]) == 0
    assert [(j.prediction.row, j.truth) for j in registry.labelled("a")] == [(0, "yes"), (2, "no")]
    with_column = tmp_path / "with-consumer.csv"
    with_column.write_text("request_id,label,consumer\nreq-1,no,shop\n")
    assert feedback(["import", str(with_column), "--registry-url", registry_url]) == 0
    assert [(j.prediction.row, j.truth) for j in registry.labelled("a")][0] == (0, "no")


@pytest.mark.parametrize(
    ("text", "args", "code", "message"),
    [
        ("request_id,label\n../x,yes\n", ["--consumer", "shop"], 2, "line 2: request_id"),
        ("request_id,label\nreq-1,yes\n", [], 2, "line 2: no consumer"),
        ("request,label\nreq-1,yes\n", ["--consumer", "shop"], 2, "no column ['request_id']"),
        ("request_id,label,row\nreq-1,yes,-1\n", ["--consumer", "shop"], 2, "line 2: row '-1'"),
        ("request_id,label\nreq-1,yes\n", ["--consumer", "nobody"], 1, "nobody"),
    ],
)
def test_feedback_import_refuses_bad_files_whole(
    registry, registry_url: str, tmp_path: Path, capsys, text: str, args: list[str], code: int, message: str
) -> None:
    registry.add_consumer("shop", owner="team-shop")
    _captures(registry)
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    assert feedback(["import", str(csv), *args, "--registry-url", registry_url]) == code
    err = capsys.readouterr().err
    assert err.startswith("lockgate feedback: ") and message in err and "Traceback" not in err
    assert registry.labelled("a") == []


def test_monitor_says_what_traffic_is_missing(registry, registry_url: str, make_bundle, capsys) -> None:
    registry.register(make_bundle("a", 1))
    registry.release("a:1")
    assert monitor(["a", "--registry-url", registry_url]) == 2
    assert "no labelled captured predictions" in capsys.readouterr().err
    _captures(registry)
    assert monitor(["a", "--drift", "--registry-url", registry_url]) == 2
    assert "3 captured rows of a:1; the policy needs 50" in capsys.readouterr().err
    assert monitor(["nope", "--registry-url", registry_url]) == 2
    assert "'nope' has no released version" in capsys.readouterr().err


def test_feedback_prune_counts_then_deletes_old_rows(registry, registry_url: str, capsys) -> None:
    _captures(registry, days_ago=3)
    assert feedback(["prune", "--older-than", "2d", "--dry-run", "--registry-url", registry_url]) == 0
    assert capsys.readouterr().out.startswith("would delete 3 captured predictions and 0 orphaned labels")
    assert len(registry.captured("a")) == 3
    assert feedback(["prune", "--older-than", "4d", "--registry-url", registry_url]) == 0
    assert capsys.readouterr().out.startswith("deleted 0 captured predictions")
    assert feedback(["prune", "--older-than", "2d", "--model", "a", "--registry-url", registry_url]) == 0
    assert capsys.readouterr().out.startswith("deleted 3 captured predictions of a and 0")
    assert registry.captured("a") == []
    with pytest.raises(SystemExit) as e:
        feedback(["prune", "--older-than", "soon", "--registry-url", registry_url])
    assert e.value.code == 2 and "not like 90, 30s" in capsys.readouterr().err
    unreachable = "postgresql+psycopg://x@127.0.0.1:1/x"
    assert feedback(["prune", "--older-than", "1d", "--registry-url", unreachable]) == 3
    err = capsys.readouterr().err
    assert err.startswith("lockgate feedback: ") and "Traceback" not in err
