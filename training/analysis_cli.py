"""``lockgate analyze BUNDLE --data CSV --target COL [--segment COL]``: error analysis with the bundle's ONNX.

Writes ``analysis.json`` and ``pca_errors.png`` into ``--out`` (default ``analysis-<name>-<version>``) and
prints the tables. With ``--upstream-truth NAME=COL`` (a cascade) it attributes the downstream's error to
its stages instead (:mod:`training.attribution`): ``attribution.json`` and ``attribution.png``.
BUNDLE is a bundle directory or a registered ``NAME:VERSION`` (the registry is opened read-only).
Exit codes: 0 done, 2 bad input (one line on stderr saying what and how to fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.artifacts import BundleError, write_json_atomic
from cascade_registry.settings import LOCATION_HELP
from training.errors import ConfigError, TrainingError

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
        "gain, PCA scatter, likely wrong labels, rows most worth labeling (empty target = unlabeled). For a "
        "cascade, --upstream-truth attributes the error to its stages (each upstream made perfect in turn).",
    )
    p.add_argument("bundle", help="bundle directory (model.onnx + card.json), or a registered NAME:VERSION")
    p.add_argument("--data", required=True, type=Path, help="CSV with the model's feature columns + target")
    p.add_argument("--target", help="label column (empty cells mark unlabeled rows; default: the column the "
                   "model was trained on, card.dataset.target)")
    p.add_argument("--upstream-truth", dest="upstream_truth", metavar="NAME=COL", action="append",
                   help="a cascade: COL holds the true label of upstream NAME; each upstream's output is "
                   "made perfect in turn and the downstream's error attributed to the stages (repeatable)")
    p.add_argument("--registry-url", dest="registry_url", metavar="URL",
                   help=f"where NAME:VERSION and the upstream models are looked up: {LOCATION_HELP}")
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
    from training.attribution import format_attribution

    try:
        bundle = _bundle_dir(args.bundle, args.registry_url)
        out = args.out or Path(f"analysis-{bundle.resolve().name}")
        target = args.target or _card_target(bundle)
        _check_cascade(bundle, args.upstream_truth)
        if args.upstream_truth:
            report = _attribution(bundle, args, target, out)
            name, text = "attribution.json", format_attribution
        else:
            report = analyze_bundle(bundle, args.data, target, segment=args.segment, out_dir=out,
                                    n_clusters=args.clusters, top=args.top, seed=args.seed)
            name, text = "analysis.json", format_analysis
        write_json_atomic(out / name, report)
    except (TrainingError, BundleError, OSError) as e:
        print(f"lockgate analyze: {e}", file=sys.stderr)
        return 2
    try:
        if args.json:
            print(report.model_dump_json(indent=2))
        else:
            print(text(report))
            print(f"JSON report: {out / name}")
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


def _bundle_dir(text: str, explicit_url: str | None) -> Path:
    """A bundle directory as given, or the registered bundle of ``NAME:VERSION``."""
    from cascade_registry import Registry, RegistryError
    from cascade_registry.artifacts import ModelRef
    from training.upstream import registry_url

    if Path(text).is_dir() or ":" not in text:
        return Path(text)
    try:
        ref = ModelRef.parse(text)
    except ValueError as e:
        raise ConfigError(f"{text!r} is neither a bundle directory nor NAME:VERSION: {e}",
                          "pass a bundle directory or a registered NAME:VERSION") from None
    try:
        with Registry.open(registry_url(explicit_url), create=False) as registry:
            return Path(registry.get(ref).bundle_path)
    except RegistryError as e:
        raise ConfigError(f"cannot look up {ref} in the registry: {e}",
                          "pass --registry-url naming the registry it was registered in") from None


def _check_cascade(bundle: Path, truth: list[str] | None) -> None:
    from cascade_registry.artifacts import ModelBundle

    ups = [u.name for u in ModelBundle.read_card(bundle).upstream]
    if ups and not truth:
        raise ConfigError(
            f"the model consumes the upstream models {', '.join(ups)} (a cascade); its error analysis "
            "attributes the error to the stages",
            f"pass --upstream-truth {ups[0]}=COL (the column holding {ups[0]}'s true label) for each "
            "upstream",
        )


def _card_target(bundle: Path) -> str:
    from cascade_registry.artifacts import ModelBundle

    target = ModelBundle.read_card(bundle).dataset.target
    if target is None:
        raise ConfigError("the model was trained on a built-in data set, so there is no target column name",
                          "pass --target naming the label column of --data")
    return target


def _attribution(bundle: Path, args: argparse.Namespace, target: str, out: Path) -> Any:
    import pandas as pd

    from cascade_registry.artifacts import ModelBundle, ModelRef
    from training.attribution import attribute_errors
    from training.tables import read_table
    from training.upstream import effective_pins, registry_url, resolve_upstreams

    loaded = ModelBundle.load(bundle)
    card = loaded.card
    truth = dict(_pair(text) for text in args.upstream_truth)
    pins = {u.name: u for u in card.upstream}
    unknown = sorted(set(truth) - set(pins))
    if unknown or not pins or set(pins) - set(truth):
        raise ConfigError(
            f"--upstream-truth names {sorted(truth)} but {card.ref}'s upstreams are {sorted(pins) or 'none'}",
            "give one --upstream-truth NAME=COL for each upstream of the model",
        )
    url = registry_url(args.registry_url)
    versions = effective_pins(card, url)  # as deployed: a revalidated pin, else the card's
    specs = [(ModelRef(name=u.name, version=versions[u.name]), u.output) for u in card.upstream]
    upstreams = resolve_upstreams(specs, url, released_only=False)
    for up in upstreams:
        pinned = pins[up.ref.name].onnx_sha256
        if up.ref.version == pins[up.ref.name].version and pinned is not None and pinned != up.onnx_sha256:
            raise ConfigError(f"{up.ref} in the registry is not the graph {card.ref} was trained against "
                              f"(sha256 {up.onnx_sha256[:12]}… vs the card's {pinned[:12]}…)",
                              "restore the upstream bundle the card pins")
    frame: pd.DataFrame = read_table(args.data)
    return attribute_errors(loaded.model_path.read_bytes(), card, upstreams, frame, target, truth,
                            args.data.name, out_dir=out)


def _pair(text: str) -> tuple[str, str]:
    name, sep, column = text.partition("=")
    if not sep or not name.strip() or not column.strip():
        raise ConfigError(f"--upstream-truth {text!r} is not NAME=COL", "e.g. --upstream-truth a=risk")
    return name.strip(), column.strip()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
