"""``lockgate feedback import LABELS.csv``: true labels for captured predictions, from a CSV file;
``lockgate feedback prune --older-than 30d``: retention for captured predictions and labels.

    lockgate feedback import labels.csv --consumer shop      columns request_id, label (and row)
    lockgate feedback import labels.csv                      a consumer column names each row's consumer
    lockgate feedback prune --older-than 30d [--model churn] [--dry-run]

Each label is joined later (``lockgate monitor``) to the captured prediction of the same request id and
row made for the same consumer; the consumer must be one the registry knows. A bad line stops the import
before anything is written (one transaction per batch of 10,000; a file is checked whole first).
Exit codes: 0 imported, 2 bad input, 1 refused (unknown consumer), 3 the registry cannot be reached.
``prune`` deletes, in one audited transaction, the captured predictions older than the duration (of one
model, or of all) and the labels of that age left with no prediction to join; run it from cron or a
Kubernetes CronJob (docs/monitoring.md).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cascade_registry.durations import DURATION_HELP, duration_option
from cascade_registry.location import ENV_VAR, LOCATION_HELP

__all__ = ["MAX_FILE_BYTES", "build_parser", "main", "read_labels"]

#: the largest CSV read (about ten million labels)
MAX_FILE_BYTES = 512 << 20
_BATCH = 10_000


class ImportFileError(ValueError):
    """The CSV cannot be read as labels; the message names the line and the fix."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate feedback",
        description="Send true labels for captured predictions to the registry (the gateway's POST /feedback "
        "does the same over HTTP), and prune captured predictions past their retention.",
        epilog=f"{LOCATION_HELP}. Exit codes: 0 imported, 1 refused, 2 bad input, 3 registry unreachable. "
        "See docs/monitoring.md.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{import,prune}")
    imp = sub.add_parser(
        "import",
        help="import labels from a CSV file: request_id, label[, row][, consumer]",
        description="Import true labels from a CSV file with a header: request_id and label, optionally row "
        "(the row's index in its request, default 0) and consumer. Each label joins the captured prediction "
        "of the same request id and row made for the same consumer. The file is checked whole first.",
        epilog=f"{LOCATION_HELP}. Exit codes: 0 imported, 1 refused, 2 bad input, 3 registry unreachable.",
    )
    imp.add_argument("csv", type=Path, help="the CSV file (a header line naming the columns)")
    imp.add_argument("--consumer", help="the consumer that made the requests (else a 'consumer' column)")
    imp.add_argument("--registry-url", metavar="URL", help=f"SQLite path or database URL (else ${ENV_VAR})")
    prune = sub.add_parser(
        "prune",
        help="delete captured predictions (and orphaned labels) older than a duration",
        description="Retention: delete the captured predictions older than --older-than (of --model, else of "
        "every model), then the labels of that age that no captured prediction joins any more. One "
        "transaction, recorded in the audit log. The gateway's capture budgets bound how fast rows arrive; "
        "this bounds how long they stay.",
        epilog=f"{LOCATION_HELP}. Exit codes: 0 pruned (or counted), 2 bad input, 3 registry unreachable.",
    )
    prune.add_argument("--older-than", required=True, type=duration_option, metavar="DURATION",
                       help=f"{DURATION_HELP}; rows captured or labelled longer ago than this go")
    prune.add_argument("--model", help="only this model's captured predictions")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    prune.add_argument("--registry-url", metavar="URL", help=f"SQLite path or database URL (else ${ENV_VAR})")
    return p


def _row(line: int, record: dict[str, str], consumer: str | None) -> dict[str, Any]:
    who = consumer or (record.get("consumer") or "").strip()
    if not who:
        raise ImportFileError(f"line {line}: no consumer; pass --consumer NAME or add a 'consumer' column")
    row = (record.get("row") or "0").strip()
    if not (row.isascii() and row.isdigit()):
        raise ImportFileError(f"line {line}: row {row[:20]!r} is not the row's index (0, 1, ...)")
    return {
        "request_id": (record.get("request_id") or "").strip(),
        "row": int(row),
        "label": (record.get("label") or "").strip(),
        "consumer": who,
    }


def read_labels(path: Path, consumer: str | None) -> list[Any]:
    """Every label of the CSV, validated (:class:`ImportFileError` names the first bad line)."""
    from pydantic import ValidationError

    from cascade_registry.capture import FeedbackLabel

    if not path.is_file():
        raise ImportFileError(f"{path} is not a file", "pass the CSV file of labels")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MB; split it into several files")
    at = datetime.now(UTC)
    labels = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"request_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ImportFileError(
                f"{path} has no column {sorted(missing)} (columns: {reader.fieldnames}); the header needs "
                "request_id and label (and optionally row, consumer)"
            )
        for line, record in enumerate(reader, start=2):
            try:
                labels.append(FeedbackLabel(**_row(line, record, consumer), at=at, source="import"))
            except ValidationError as e:
                err = e.errors()[0]
                raise ImportFileError(f"line {line}: {err['loc'][0]}: {err['msg']}") from None
    return labels


def _prune(args: argparse.Namespace) -> int:
    from cascade_registry import Registry
    from cascade_registry.errors import RegistryError, exit_status
    from cascade_registry.settings import locate_registry

    try:
        with Registry.open(locate_registry(args.registry_url).url, create=False) as registry:
            pruned = registry.prune_feedback(
                timedelta(seconds=args.older_than), args.model, dry_run=args.dry_run
            )
    except RegistryError as e:
        print(f"lockgate feedback: {e}", file=sys.stderr)
        return exit_status(e)
    verb = "would delete" if pruned.dry_run else "deleted"
    scope = f"of {pruned.model} " if pruned.model else ""
    print(
        f"{verb} {pruned.captured} captured predictions {scope}and {pruned.labels} orphaned labels from "
        f"before {pruned.before:%Y-%m-%d %H:%M:%S} UTC"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "prune":
        return _prune(args)
    from cascade_registry import Registry
    from cascade_registry.errors import RegistryError, exit_status
    from cascade_registry.settings import locate_registry

    try:
        labels = read_labels(args.csv, args.consumer)
        with Registry.open(locate_registry(args.registry_url).url, create=False) as registry:
            for name in sorted({label.consumer for label in labels}):
                registry.consumer(name)  # NotFoundError for a consumer the registry does not know
            stored = sum(
                registry.record_labels(labels[i : i + _BATCH]) for i in range(0, len(labels), _BATCH)
            )
    except (ImportFileError, UnicodeDecodeError, csv.Error, OSError) as e:
        print(f"lockgate feedback: {e}", file=sys.stderr)
        return 2
    except RegistryError as e:
        print(f"lockgate feedback: {e}", file=sys.stderr)
        return exit_status(e)
    print(f"imported {stored} labels from {args.csv}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
