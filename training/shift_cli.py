"""``lockgate shift --train A.csv --test B.csv (--target COL | --no-target)``: adversarial validation
between two CSV files. The label column must be named (``--target``, used as one more feature) or
``--no-target`` must say there is none, so a label is never used as a feature without being asked.

Exit codes: 0 done (and no shift, or shift without ``--fail-on-shift``), 1 shift detected with
``--fail-on-shift``, 2 bad input (one line on stderr saying what and how to fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.artifacts import BundleError, write_json_atomic
from training.errors import TrainingError

if TYPE_CHECKING:
    from training.shift import ShiftReport

__all__ = ["ShiftSettings", "build_parser", "main"]


class ShiftSettings(BaseSettings):
    """Defaults of ``lockgate shift``; environment variables ``LOCKGATE_SHIFT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SHIFT_")

    folds: int = 5
    seed: int = 0
    validation_fraction: float = 0.2
    flag_fraction: float = 0.1


def build_parser(settings: ShiftSettings | None = None) -> argparse.ArgumentParser:
    settings = settings or ShiftSettings()
    p = argparse.ArgumentParser(
        prog="lockgate shift",
        description="Adversarial validation: train a classifier to tell training rows from test rows. "
        "Reports the AUC, proposes the most test-like training rows as validation data and flags the "
        "most train-like ones.",
    )
    p.add_argument("--train", required=True, type=Path, help="training CSV")
    p.add_argument("--test", required=True, type=Path, help="test (or production) CSV, same columns")
    label = p.add_mutually_exclusive_group()
    label.add_argument(
        "--target", metavar="COL", help="the label column; used as one more feature, as the chapter describes"
    )
    label.add_argument(
        "--no-target", action="store_true", help="the CSVs have no label column: every column is a feature"
    )
    p.add_argument("--folds", type=int, default=settings.folds,
                   help="out-of-fold blocks (default %(default)s)")
    p.add_argument("--seed", type=int, default=settings.seed,
                   help="seed of the folds and the classifier (default %(default)s)")
    p.add_argument("--validation-fraction", type=float, default=settings.validation_fraction,
                   help="share of training rows proposed as validation (default %(default)s)")
    p.add_argument("--flag-fraction", type=float, default=settings.flag_fraction,
                   help="share of training rows flagged as most train-like (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON instead of the summary")
    p.add_argument("--json-out", type=Path, metavar="FILE", help="also write the full report as JSON to FILE")
    p.add_argument("--card", type=Path, help="store the report in this bundle's card.details['shift']")
    p.add_argument("--fail-on-shift", action="store_true", help="exit 1 when a shift is detected")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        settings = ShiftSettings()
    except ValueError as e:
        print(f"lockgate shift: invalid LOCKGATE_SHIFT_* environment: {e}".splitlines()[0], file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    from training.shift import adversarial_validation, read_pair, store_in_card  # scikit-learn, pandas
    try:
        train, test = read_pair(args.train, args.test)
        if args.target is None and not args.no_target:
            raise TrainingError(
                "say which column is the label: without it every column, the label included, would be "
                f"used as a feature (columns: {', '.join(map(str, train.columns))})",
                "pass --target COL (the label is then one more feature, on purpose) or --no-target",
            )
        report = adversarial_validation(train, test, target=args.target,
                                        validation_fraction=args.validation_fraction,
                                        flag_fraction=args.flag_fraction, folds=args.folds, seed=args.seed)
        if args.json_out:
            write_json_atomic(args.json_out, report)
        if args.card:
            store_in_card(args.card, report)
    except (TrainingError, BundleError, OSError) as e:
        print(f"lockgate shift: {e}", file=sys.stderr)
        return 2
    try:
        if args.json:
            print(report.model_dump_json(indent=2))
        else:
            _print_report(report, args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 1 if (report.shifted and args.fail_on_shift) else 0


def _print_report(report: ShiftReport, args: argparse.Namespace) -> None:
    print(f"adversarial validation AUC: {report.auc:.4f} ({report.train_rows} train rows vs "
          f"{report.test_rows} test rows, {report.folds}-fold out-of-fold)")
    print(report.verdict)
    print("most telling features: " + ", ".join(f"{k} {v:.3f}" for k, v in report.top_features.items()))
    shown = report.proposed_validation_rows[:10]
    print(f"proposed validation rows (most test-like, {len(report.proposed_validation_rows)}): {shown}"
          + (" ..." if len(report.proposed_validation_rows) > 10 else ""))
    flagged = report.flagged_train_like_rows[:10]
    print(f"flagged train-like rows ({len(report.flagged_train_like_rows)}): {flagged}"
          + (" ..." if len(report.flagged_train_like_rows) > 10 else ""))
    if args.json_out:
        print(f"report: {args.json_out}")
    if args.card:
        print(f"stored in {args.card}/card.json details['shift']")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
