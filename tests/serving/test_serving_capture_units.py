"""The capture's sampler, bounds and sinks, without a gateway: deterministic sampling by request id,
drop-and-count on a full queue, a spent budget or a store that is down, and rolling Parquet files."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY

from cascade_registry.capture import CapturedPrediction
from serving.capture import Capture, CaptureRecord, RegistrySink, to_rows
from serving.capture_parquet import ParquetSink, read_captures


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("lockgate_capture_dropped_total", {"reason": reason}) or 0.0


def _record(rows: int = 1, request_id: str | None = None) -> CaptureRecord:
    x = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3)
    x[0, 1] = np.nan
    p = np.tile([0.25, 0.75], (rows, 1))
    return CaptureRecord(
        request_id or uuid.uuid4().hex,
        "demo",
        1,
        "shop",
        "live",
        1_790_000_000.0,
        x,
        None,
        ["a", "b", "c"],
        [],
        ["no", "yes"],
        np.ones(rows, dtype=np.int64),
        p,
        2.5,
    )


class _Blocked:
    """A sink (our CaptureSink protocol) whose writes wait until released: a stuck store."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rows: list[CapturedPrediction] = []

    def write(self, rows: list[CapturedPrediction]) -> int:
        self.release.wait(10)
        self.rows.extend(rows)
        return len(rows)

    def close(self) -> None:
        self.release.set()


def test_sampling_is_deterministic_per_request_and_matches_the_rate() -> None:
    capture = Capture(_Blocked(), 0.1, {"all": 1.0, "none": 0.0})
    ids = [uuid.UUID(int=i).hex for i in range(20_000)]
    share = sum(capture.wants("demo", i) for i in ids) / len(ids)
    assert abs(share - 0.1) < 4 * (0.1 * 0.9 / len(ids)) ** 0.5  # four binomial standard errors
    assert [capture.wants("demo", i) for i in ids[:50]] == [capture.wants("demo", i) for i in ids[:50]]
    assert all(capture.wants("all", i) for i in ids[:100]) and not any(capture.wants("none", i) for i in ids)
    assert not Capture(None, 1.0).wants("demo", ids[0])  # no sink: off


def test_records_become_one_captured_prediction_per_row() -> None:
    rows = to_rows(_record(rows=2, request_id="req-1"))
    assert [(r.request_id, r.row, r.label) for r in rows] == [("req-1", 0, "yes"), ("req-1", 1, "yes")]
    assert rows[0].inputs == [0.0, None, 2.0] and rows[0].probabilities == [0.25, 0.75]
    assert rows[0].at.tzinfo is not None and rows[0].latency_ms == 2.5
    mixed = _record(rows=2)
    mixed.categorical, mixed.categorical_names = np.array([["Lyon", ""], ["Oslo", "x"]]), ["city", "kind"]
    assert [r.inputs for r in to_rows(mixed)] == [
        {"a": 0.0, "b": None, "c": 2.0, "city": "Lyon", "kind": ""},
        {"a": 3.0, "b": 4.0, "c": 5.0, "city": "Oslo", "kind": "x"},
    ]


def test_a_stuck_store_fills_the_queue_and_drops_are_counted_without_blocking() -> None:
    sink = _Blocked()
    capture = Capture(sink, 1.0, queue_rows=3, flush_seconds=0.01)
    capture.start()
    before = _dropped("queue_full")
    try:
        capture.offer(_record())  # the writer takes it and blocks in the sink
        for _ in range(50):
            if not capture._queue:
                break
            threading.Event().wait(0.01)
        for _ in range(10):
            capture.offer(_record())  # never blocks: 3 queue, 7 dropped
        assert _dropped("queue_full") - before == 7
    finally:
        sink.release.set()
        capture.stop()
    assert len(sink.rows) == 4


def test_the_rows_and_bytes_budgets_drop_the_excess() -> None:
    sink = _Blocked()
    sink.release.set()
    capture = Capture(sink, 1.0, rows_per_minute=5, bytes_per_minute=2048)
    rows_before, bytes_before = _dropped("rows_budget"), _dropped("bytes_budget")
    for _ in range(4):
        capture.offer(_record(rows=2))  # 2 + 2 fit the 5 rows, the other 4 rows do not
    assert _dropped("rows_budget") - rows_before == 4
    capture.flush()
    assert len(sink.rows) == 4
    capture.bytes_per_minute = 1024 + 200
    capture.rows_per_minute = 10_000
    capture.offer(_record(rows=10))
    capture.flush()
    assert _dropped("bytes_budget") - bytes_before > 0


def test_a_store_that_is_down_counts_store_errors_and_a_broken_record_never_raises() -> None:
    with socket.socket() as s:  # a port nobody listens on: the database is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    capture = Capture(RegistrySink(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"), 1.0)
    before, errors = _dropped("store_error"), _dropped("error")
    capture.offer(_record(rows=3))
    capture.flush()
    assert _dropped("store_error") - before == 3
    broken = _record()
    broken.probabilities = None  # type: ignore[assignment]
    capture.offer(broken)  # counted, not raised
    assert _dropped("error") - errors == 1
    capture.stop()


def test_parquet_files_roll_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path / "captured", file_rows=4, keep_files=2)
    capture = Capture(sink, 1.0)
    for i in range(7):
        capture.offer(_record(rows=2, request_id=f"r{i}"))
        capture.flush()  # one write per record: a file closes every 2 records
    capture.stop()  # closes the open file
    files = sorted((tmp_path / "captured").glob("*"))
    assert len(files) == 2 and all(f.suffix == ".parquet" for f in files)
    rows = read_captures(tmp_path / "captured")
    assert [r.request_id for r in rows][-2:] == ["r6", "r6"] and rows[-1].inputs == [3.0, 4.0, 5.0]


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    from serving.app import open_capture
    from serving.settings import ServeSettings

    parquet = open_capture(ServeSettings(capture_store="parquet", capture_dir=tmp_path, capture_rate=0.5))
    assert isinstance(parquet.sink, ParquetSink) and parquet.enabled
    registry = open_capture(ServeSettings(registry_url="sqlite:///x.db", capture_rates={"demo": 1.0}))
    assert isinstance(registry.sink, RegistrySink) and registry.sink.url == "sqlite:///x.db"
    assert registry.wants("demo", "any-id")
    assert open_capture(ServeSettings(capture_store="off")).sink is None
    assert open_capture(ServeSettings(canary=tmp_path)).sink is None  # a canary has no registry
    assert not open_capture(ServeSettings(capture_rate=0.0)).enabled
