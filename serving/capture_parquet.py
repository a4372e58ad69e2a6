"""Rolling Parquet files for captured predictions (pyarrow): the other sink of :mod:`serving.capture`.

Each worker appends row groups to its own open file ``captured-<start UTC>-<pid>.parquet.part`` and, after
``file_rows`` rows (or at shutdown), closes it and renames it to ``.parquet``: a reader never sees a
half-written file. Only the newest ``keep_files`` closed files are kept (the oldest are removed), so the
directory is bounded. Columns: those of :class:`~cascade_registry.capture.CapturedPrediction`, with
``inputs`` and ``probabilities`` as JSON text (a row may be a list or an object).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from cascade_registry.capture import CapturedPrediction

__all__ = ["ParquetSink", "SCHEMA", "read_captures"]

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("consumer", pa.string()),
        ("role", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("inputs", pa.string()),
        ("label", pa.string()),
        ("probabilities", pa.string()),
        ("latency_ms", pa.float64()),
    ]
)


def _table(rows: list[CapturedPrediction]) -> pa.Table:
    columns = {
        "request_id": [r.request_id for r in rows],
        "row": [r.row for r in rows],
        "model": [r.model for r in rows],
        "version": [r.version for r in rows],
        "consumer": [r.consumer for r in rows],
        "role": [r.role for r in rows],
        "at": [r.at for r in rows],
        "inputs": [orjson.dumps(r.inputs).decode() for r in rows],
        "label": [r.label for r in rows],
        "probabilities": [orjson.dumps(r.probabilities).decode() for r in rows],
        "latency_ms": [r.latency_ms for r in rows],
    }
    return pa.Table.from_pydict(columns, schema=SCHEMA)


class ParquetSink:
    """Append captured rows to rolling Parquet files under ``directory``."""

    def __init__(self, directory: Path, file_rows: int = 50_000, keep_files: int = 48) -> None:
        self.directory = Path(directory)
        self.file_rows = file_rows
        self.keep_files = keep_files
        self._writer: pq.ParquetWriter | None = None
        self._part: Path | None = None
        self._rows = 0

    def write(self, rows: list[CapturedPrediction]) -> int:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self._part = self.directory / f"captured-{stamp}-{os.getpid()}.parquet.part"
            self._writer = pq.ParquetWriter(self._part, SCHEMA)
            self._rows = 0
        self._writer.write_table(_table(rows))
        self._rows += len(rows)
        if self._rows >= self.file_rows:
            self._roll()
        return len(rows)

    def _roll(self) -> None:
        writer, part = self._writer, self._part
        self._writer, self._part = None, None
        if writer is None or part is None:
            return
        writer.close()
        os.replace(part, part.with_suffix(""))  # .parquet.part -> .parquet: whole files only
        closed = sorted(self.directory.glob("captured-*.parquet"))
        for old in closed[: max(0, len(closed) - self.keep_files)]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self._roll()


def read_captures(directory: Path) -> list[CapturedPrediction]:
    """Every row of the closed files under ``directory``, oldest file first."""
    rows: list[CapturedPrediction] = []
    for path in sorted(Path(directory).glob("captured-*.parquet")):
        for r in pq.read_table(path).to_pylist():
            rows.append(
                CapturedPrediction(
                    **{
                        **r,
                        "inputs": json.loads(r["inputs"]),
                        "probabilities": json.loads(r["probabilities"]),
                    }
                )
            )
    return rows
