"""``lockgate shift --train A.csv --test B.csv``: adversarial validation between two CSV files.

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

__all__ = ["ShiftSettings", "main"]


class ShiftSettings(BaseSettings):
    """Defaults of ``lockgate shift``; environment variables ``LOCKGATE_SHIFT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SHIFT_")

    folds: int = 5
    seed: int = 0
    validation_fraction: float = 0.2
    flag_fraction: float = 0.1


def _parser(settings: ShiftSettings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate shift",
        description="Adversarial validation: train a classifier to tell training rows from test rows. "
        "Reports the AUC, proposes the most test-like training rows as validation data and flags the "
        "most train-like ones.",
    )
    p.add_argument("--train", required=True, type=Path, help="training CSV")
    p.add_argument("--test", required=True, type=Path, help="test (or production) CSV, same columns")
    p.add_argument("--target", help="label column; used as one more feature, as the chapter describes")
    p.add_argument("--folds", type=int, default=settings.folds,
                   help="out-of-fold blocks (default %(default)s)")
    p.add_argument("--seed", type=int, default=settings.seed)
    p.add_argument("--validation-fraction", type=float, default=settings.validation_fraction,
                   help="share of training rows proposed as validation (default %(default)s)")
    p.add_argument("--flag-fraction", type=float, default=settings.flag_fraction,
                   help="share of training rows flagged as most train-like (default %(default)s)")
    p.add_argument("--json", type=Path, help="write the full report as JSON to this file")
    p.add_argument("--card", type=Path, help="store the report in this bundle's card.details['shift']")
    p.add_argument("--fail-on-shift", action="store_true", help="exit 1 when a shift is detected")
    return p


def main(argv: list[str] | None = None) -> int:
    from training.shift import adversarial_validation, read_pair, store_in_card

    try:
        settings = ShiftSettings()
    except ValueError as e:
        print(f"lockgate shift: invalid LOCKGATE_SHIFT_* environment: {e}".splitlines()[0], file=sys.stderr)
        return 2
    args = _parser(settings).parse_args(argv)
    try:
        train, test = read_pair(args.train, args.test)
        report = adversarial_validation(train, test, target=args.target,
                                        validation_fraction=args.validation_fraction,
                                        flag_fraction=args.flag_fraction, folds=args.folds, seed=args.seed)
        if args.json:
            write_json_atomic(args.json, report)
        if args.card:
            store_in_card(args.card, report)
    except (TrainingError, BundleError, OSError) as e:
        print(f"lockgate shift: {e}", file=sys.stderr)
        return 2
    try:
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
    if args.json:
        print(f"report: {args.json}")
    if args.card:
        print(f"stored in {args.card}/card.json details['shift']")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
