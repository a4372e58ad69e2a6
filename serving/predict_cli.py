"""``lockgate predict BUNDLE CSV``: run a bundle's ONNX model on a CSV file, offline (no server).

Reads the card's feature columns by name (other columns are ignored, so a labelled file works; for a
model with categorical or boolean columns each row goes through the gateway's named-column checks, an
empty cell being a missing value), runs
ONNX Runtime through :class:`~serving.predictor.OnnxPredictor` in batches, and writes one CSV row per
input row: ``label`` and one ``p_<class>`` column per class — to stdout, or to ``--out FILE``; ``--json``
prints JSON instead. A bundle without a passing gate report is run with a warning on stderr.

Exit codes: 0 done; 2 bad input (unreadable bundle or CSV, missing columns, non-numeric values).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from cascade_registry.artifacts import InvalidBundleError, ModelBundle, write_text_atomic

from .errors import ServingError

__all__ = ["build_parser", "main"]

PROG = "lockgate predict"
_CHUNK = 4096


class _Usage(Exception):
    """A problem with the input, printed as one line (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a bundle's model.onnx on a CSV file: one label and the class probabilities per row.",
        epilog="example: lockgate predict out/wine-1 new_rows.csv --out scored.csv   "
        "(exit 0 done, 2 bad input)",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory written by 'lockgate train'")
    p.add_argument(
        "csv", type=Path, metavar="CSV", help="CSV with the card's feature columns ('-': stdin)"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the predictions CSV here, not to stdout")
    p.add_argument("--json", action="store_true", help="print JSON (model, classes, predictions) to stdout")
    return p


def _read_records(path: Path, features: list[str]) -> tuple[list[list[str]], list[int]]:
    """The raw cells of the CSV's feature columns, in the card's order, with each row's line number."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise _Usage(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise _Usage(f"{path} is empty; it needs a header row with the features {features}")
    missing = [f for f in features if f not in header]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise _Usage(
            f"{path} lacks {len(missing)} of the model's {len(features)} feature columns ({shown}); "
            "give the CSV a header row with the names in the bundle's card.json"
        )
    index = [header.index(f) for f in features]
    records, lines = [], []
    for n, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) <= max(index):
            raise _Usage(f"{path} line {n}: the row is short ({len(record)} of {len(header)} cells)")
        records.append([record[i] for i in index])
        lines.append(n)
    if not records:
        raise _Usage(f"{path} has a header but no rows")
    return records, lines


def _read_rows(path: Path, features: list[str]) -> list[list[float]]:
    """The feature columns of the CSV, in the card's order, as floats (empty cells are NaN)."""
    records, lines = _read_records(path, features)
    rows = []
    for n, record in zip(lines, records, strict=True):
        try:
            rows.append([float(v) if v.strip() else float("nan") for v in record])
        except ValueError:
            raise _Usage(f"{path} line {n}: a feature value is not a number") from None
    return rows


def _cell(value: str, numeric: bool) -> Any:
    """A CSV cell as the gateway would receive it: empty -> missing, a numeric column's number -> float
    (anything else stays a string, which the column check then refuses by name)."""
    if not value.strip():
        return None
    if numeric:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _read_instances(path: Path, predictor: Any) -> list[dict[str, Any]]:
    """A mixed table's rows as named-column instances (what ``POST /predict`` takes)."""
    names = [f.name for f in predictor.card.features]
    numeric = [f.kind == "numeric" for f in predictor.card.features]
    records, _ = _read_records(path, names)
    return [{n: _cell(v, k) for n, v, k in zip(names, r, numeric, strict=True)} for r in records]


def _load(bundle_dir: Path) -> Any:
    from .predictor import OnnxPredictor  # ONNX Runtime: only when a prediction runs

    try:
        bundle = ModelBundle.load(bundle_dir)
    except InvalidBundleError as e:
        raise _Usage(f"{bundle_dir} is not a usable bundle: {e}") from None
    report = bundle.gate_report()
    gated = report is not None and report.binds(bundle.onnx_sha256)
    if not gated:
        print(
            f"{PROG}: warning: {bundle_dir} has no passing gate report for this model.onnx "
            f"(run 'lockgate check {bundle_dir}'); predicting anyway",
            file=sys.stderr,
        )
    return OnnxPredictor.from_bundle(bundle_dir, canary=not gated)


def _predict(predictor: Any, rows: list[Any]) -> tuple[list[str], list[list[float]], list[str]]:
    """Labels, probabilities, and the warnings (unseen levels) of ``rows``: float rows of an all-numeric
    model, else named-column instances."""
    import numpy as np

    from .validation import RowValidator

    validator = RowValidator(predictor.card, max_batch_rows=_CHUNK)
    labels: list[str] = []
    probabilities: list[list[float]] = []
    warnings: list[str] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        if validator.table.mixed:
            x, cat, notes = validator.from_instances(chunk, f"rows[{start}:]")
            warnings += [f"row {start + i}: {w}" for i, ws in enumerate(notes or []) for w in ws]
        else:
            x, cat = validator.check_values(np.array(chunk, dtype=np.float64), "rows"), None
        idx, proba = predictor.predict(x, cat)
        labels += [predictor.classes[int(i)] for i in idx]
        probabilities += [[round(float(p), 6) for p in row] for row in proba]
    return labels, probabilities, warnings


def _csv_text(classes: list[str], labels: list[str], probabilities: list[list[float]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["label", *(f"p_{c}" for c in classes)])
    for label, ps in zip(labels, probabilities, strict=True):
        writer.writerow([label, *(f"{p:.6g}" for p in ps)])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.out is not None and not args.out.parent.is_dir():
            raise _Usage(f"the directory of --out {args.out} does not exist")
        predictor = _load(args.bundle)
        rows = (_read_instances(args.csv, predictor) if predictor.card.categorical_features
                else _read_rows(args.csv, predictor.feature_names))
        labels, probabilities, warnings = _predict(predictor, rows)
    except (_Usage, ServingError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    for w in warnings[:20]:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if len(warnings) > 20:
        print(f"{PROG}: warning: ... {len(warnings) - 20} more", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "model": f"{predictor.name}:{predictor.version}",
                    "sha256": predictor.sha256,
                    "classes": predictor.classes,
                    "predictions": [
                        {"label": label, "probabilities": dict(zip(predictor.classes, ps, strict=True))}
                        for label, ps in zip(labels, probabilities, strict=True)
                    ],
                },
                indent=2,
            )
        )
        return 0
    text = _csv_text(predictor.classes, labels, probabilities)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(args.out, text)
        print(f"{PROG}: {len(labels)} rows -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
