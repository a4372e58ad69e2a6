"""``lockgate monitor MODEL``: online quality and live drift of a served model, from captured traffic.

    lockgate monitor churn                      accuracy, Brier, ECE of labelled live rows vs the card
    lockgate monitor churn --since 1h --png r.png
    lockgate monitor churn --drift              adversarial validation of captured inputs vs the
                                                training reference; marks the version stale above
                                                the policy's monitor.drift_auc

The gateway captures answered rows (``lockgate serve --capture-rate``) into the registry; consumers send
true labels (``POST /feedback``, ``lockgate feedback import``). Exit codes: 0 done, 1 drift found with
``--fail-on-drift``, 2 bad input or not enough traffic, 3 the registry cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade_registry.durations import DURATION_HELP, parse_duration
from cascade_registry.location import ENV_VAR, LOCATION_HELP

if TYPE_CHECKING:
    from cascade_registry import Registry
    from training.monitor import DriftReport, QualityReport

__all__ = ["build_parser", "main"]


def _since(text: str) -> datetime:
    """A duration back from now (``1h``) or an ISO-8601 time (UTC when it has no zone)."""
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {text!r} is neither {DURATION_HELP} nor an ISO time such as 2026-12-01T18:00:00"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate monitor",
        description="Online quality of a served model from its captured, labelled traffic (accuracy, Brier, "
        "ECE against the card's offline test figures, a reliability diagram), and with --drift an "
        "adversarial validation of captured inputs against the training reference.",
        epilog=f"{LOCATION_HELP}. Exit codes: 0 done, 1 drift with --fail-on-drift, 2 bad input or too "
        "little traffic, 3 registry unreachable. See docs/monitoring.md.",
    )
    p.add_argument("model", help="the model's name")
    p.add_argument("--version", type=int, help="the version (default: the released one)")
    p.add_argument(
        "--role",
        choices=["live", "shadow", "canary"],
        default="live",
        help="whose captured answers to score: live (default), or a rollout candidate's, e.g. "
        "'--version 2 --role shadow' after 'lockgate registry release NAME:2 --shadow'",
    )
    p.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="only traffic since WHEN: a duration back from now (90, 30m, 1h30m) or an ISO time",
    )
    p.add_argument("--registry-url", metavar="URL", help=f"SQLite path or database URL (else ${ENV_VAR})")
    p.add_argument(
        "--png", type=Path, metavar="FILE", help="reliability diagram (default monitor-MODEL-VERSION.png)"
    )
    p.add_argument(
        "--drift",
        action="store_true",
        help="check captured inputs for drift; mark the version stale above the policy threshold",
    )
    p.add_argument("--dry-run", action="store_true", help="with --drift: report, but record nothing")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _version(registry: Registry, model: str, version: int | None) -> Any:
    if version is not None:
        return registry.get(f"{model}:{version}")
    released = [i for i in registry.released() if i.ref.name == model]
    if not released:
        from training.monitor import MonitorError

        raise MonitorError(f"{model!r} has no released version", "pass --version N")
    return released[0]


def _print_quality(report: QualityReport, png: Path | None, role: str = "live") -> None:
    from cascade_registry.rendering import render_table

    rows = []
    for f in report.overall + report.groups:
        off = report.offline.get(f.version, {})
        judged = report.within.get(f.version, {}) if f.consumer == "*" else {}
        cells = []
        for key in ("accuracy", "brier", "ece"):
            mark = "" if not judged else ("  ok" if judged[key] else "  DIFFERS")
            card = off.get(key, float("nan"))
            cells.append(f"{getattr(f, key):.4f} ±{getattr(f, key + '_error'):.4f} (card {card:.4f}){mark}")
        rows.append([f.version, "all" if f.consumer == "*" else f.consumer, f.rows, *cells])
    since = f" since {report.since.isoformat(timespec='seconds')}" if report.since else ""
    print(f"online quality of {report.model}{since} (labelled {role} rows; ± two standard errors)")
    print(render_table(["version", "consumer", "rows", "accuracy", "brier", "ece"], rows))
    if report.unknown_labels:
        print(f"{report.unknown_labels} labels name no class of the card and were left out")
    if png is not None:
        print(f"reliability diagram: {png}")


def _print_drift(report: DriftReport, marked: bool) -> None:
    print(report.verdict)
    top = sorted(report.features.items(), key=lambda kv: -kv[1]["auc"])[:10]
    print("per feature (ROC AUC of the column alone, importance in the classifier):")
    for name, f in top:
        print(f"  {name:<28} auc {f['auc']:.3f}  importance {f['importance']:.3f}")
    if marked:
        print(
            f"marked {report.model}:{report.version} stale in the registry (see 'lockgate registry impact "
            f"{report.model}' and the gateway's /readyz)"
        )


def _quality(registry: Registry, info: Any, args: argparse.Namespace) -> tuple[QualityReport, Path] | None:
    from training.monitor import online_quality, plot_online_reliability

    role = getattr(args, "role", "live")
    labelled = registry.labelled(info.ref.name, info.ref.version, role=role, since=args.since)
    if not labelled and args.drift:
        return None
    report = online_quality(labelled, {info.ref.version: info.card}, args.since)
    png = args.png or Path(f"monitor-{info.ref.name}-{info.ref.version}.png")
    plot_online_reliability(
        png, labelled, info.card, f"{info.ref} on {role} traffic ({len(labelled)} labelled rows)"
    )
    return report, png


def _drift(registry: Registry, info: Any, args: argparse.Namespace) -> tuple[DriftReport, bool]:
    from training.monitor import drift_check, monitor_policy

    policy = monitor_policy(registry.gate_report(info.ref).policy)
    rows = registry.captured(
        info.ref.name, info.ref.version, role="live", since=args.since, limit=policy.drift_max_rows
    )
    report = drift_check(rows, Path(info.bundle_path), info.card, policy)
    if not args.dry_run:
        figures = {"features": report.features, "reference_rows": report.reference_rows}
        registry.mark_drift(
            info.ref,
            report.verdict,
            figures,
            auc=report.auc,
            threshold=report.threshold,
            rows=report.rows,
            stale=report.drifted,
            actor="monitor",
        )
    return report, report.drifted and not args.dry_run


def run(args: argparse.Namespace) -> int:
    from cascade_registry import Registry
    from cascade_registry.settings import locate_registry

    with Registry.open(locate_registry(args.registry_url).url, create=False) as registry:
        info = _version(registry, args.model, args.version)
        quality = _quality(registry, info, args)
        drift = _drift(registry, info, args) if args.drift else None
    if args.json:
        import json

        print(
            json.dumps(
                {
                    "quality": None if quality is None else quality[0].model_dump(mode="json"),
                    "drift": None if drift is None else drift[0].model_dump(mode="json"),
                },
                indent=2,
            )
        )
    else:
        if quality is None:
            print("no labelled live rows yet: online quality needs labels (POST /feedback)")
        else:
            _print_quality(*quality, getattr(args, "role", "live"))
        if drift is not None:
            _print_drift(*drift)
    return 1 if drift is not None and drift[0].drifted and args.fail_on_drift else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cascade_registry.errors import RegistryError, exit_status
    from training.errors import TrainingError

    try:
        return run(args)
    except RegistryError as e:
        print(f"lockgate monitor: {e}", file=sys.stderr)
        return exit_status(e)
    except (TrainingError, OSError) as e:
        print(f"lockgate monitor: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
