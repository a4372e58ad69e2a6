"""``lockgate analyze BUNDLE --data CSV --target COL [--segment COL]``: error analysis with the bundle's ONNX.

Writes ``analysis.json`` and ``pca_errors.png`` into ``--out`` (default ``analysis-<name>-<version>``) and
prints the tables; warns on stderr when the CSV holds rows the model was trained or calibrated on.
Exit codes: 0 done, 2 bad input (one line on stderr saying what and how to fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.artifacts import BundleError, write_json_atomic
from training.errors import TrainingError

__all__ = ["AnalyzeSettings", "build_parser", "main"]


class AnalyzeSettings(BaseSettings):
    """Defaults of ``lockgate analyze``; environment variables ``LOCKGATE_ANALYZE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_ANALYZE_")

    clusters: int = 6
    top: int = 20
    seed: int = 0


def build_parser(settings: AnalyzeSettings | None = None) -> argparse.ArgumentParser:
    settings = settings or AnalyzeSettings()
    p = argparse.ArgumentParser(
        prog="lockgate analyze",
        description="Error analysis of a bundle on labeled data: sliced metrics, error clusters by possible "
        "gain, PCA scatter, likely wrong labels, rows most worth labeling (empty target = unlabeled). "
        "Warns when the rows include rows the model was trained or calibrated on (their errors are "
        "fewer than on new data).",
    )
    p.add_argument("bundle", type=Path, help="bundle directory (model.onnx + card.json)")
    p.add_argument("--data", required=True, type=Path, help="CSV with the model's feature columns + target")
    p.add_argument("--target", required=True, help="label column (empty cells mark unlabeled rows)")
    p.add_argument("--segment", help="column to slice the metrics by")
    p.add_argument("--out", type=Path, help="output directory (default: analysis-<name>-<version>)")
    p.add_argument("--clusters", type=int, default=settings.clusters, help="k-means clusters (%(default)s)")
    p.add_argument("--top", type=int, default=settings.top, help="rows listed per table (%(default)s)")
    p.add_argument("--seed", type=int, default=settings.seed, help="seed of k-means (%(default)s)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the tables")
    p.add_argument("--json-only", dest="json", action="store_true", help=argparse.SUPPRESS)  # old spelling
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        settings = AnalyzeSettings()
    except ValueError as e:
        message = f"lockgate analyze: invalid LOCKGATE_ANALYZE_* environment: {e}".splitlines()[0]
        print(message, file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    from training.analysis import analyze_bundle, format_analysis  # scikit-learn, pandas, matplotlib

    out = args.out or Path(f"analysis-{args.bundle.resolve().name}")
    try:
        report = analyze_bundle(args.bundle, args.data, args.target, segment=args.segment, out_dir=out,
                                n_clusters=args.clusters, top=args.top, seed=args.seed)
        write_json_atomic(out / "analysis.json", report)
    except (TrainingError, BundleError, OSError) as e:
        print(f"lockgate analyze: {e}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"lockgate analyze: warning: {warning}", file=sys.stderr)
    try:
        if args.json:
            print(report.model_dump_json(indent=2))
        else:
            print(format_analysis(report))
            print(f"JSON report: {out / 'analysis.json'}")
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
