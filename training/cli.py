"""``lockgate train``: train, calibrate and export a model as an ONNX bundle.

Exit codes: 0 bundle written; 2 bad input (one line on stderr, nothing written); 1 unexpected failure.
This module imports torch and scikit-learn only when training runs, never for ``--help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.settings import LOCATION_HELP

__all__ = ["FAMILY_NAMES", "TrainSettings", "build_parser", "main"]

#: the built-in model families, for --help without importing scikit-learn or torch (a test keeps this
#: equal to training.families.family_names())
FAMILY_NAMES = (
    "logistic_regression",
    "random_forest",
    "hist_gradient_boosting",
    "svm",
    "naive_bayes",
    "mlp",
    "cnn",
    "gru",
    "lstm",
    "multi",
    "averaging",
    "majority_vote",
    "stacking",
    "balanced_ensemble",
)

EPILOG = """\
examples:
  lockgate train                       # the demo: breast_cancer, SVM -> out/demo-1
  lockgate train --data wine --model svm --calibration isotonic --name wine
  lockgate train --data wine --model mlp --calibration temperature --trials 1 --name wine-mlp
  lockgate train --data digits --model cnn --trials 1 --name digits-cnn   # 8x8 images, a small CNN
  lockgate train --data sequences --model gru --trials 1 --name seq-gru   # token sequences, a GRU
  lockgate train --data sequences --model lstm --trials 1 --name seq-lstm # the same with an LSTM
  lockgate train --data mixed_inputs --model multi --trials 1 --name mixed  # table + sequence
  lockgate train --data data.csv --target churned --segment region --model random_forest --trials 20
  lockgate train --config train.toml --seed 7      # flags override the file
  lockgate train --data b.csv --target default --name b --upstream a:1   # a cascade on released a:1
  lockgate train --retrain-from b:1 --data b.csv    # b's recorded options, against a's released version
  lockgate train --data b.csv --target y --model mlp --init-from a:1 --freeze 1 --unfreeze-after 5
  lockgate train --data digits --model mlp --size-search --name digits-mlp
  lockgate train --data shapes.csv --target shape --target2 size --model mlp --name shapes  # two heads

exit codes: 0 bundle written, 2 bad input (nothing written), 1 unexpected failure.
docs: docs/training.md
"""


class TrainSettings(BaseSettings):
    """Environment defaults for ``lockgate train`` (LOCKGATE_TRAIN_<FIELD>); flags win."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_TRAIN_", extra="ignore")

    out: Path | None = None
    price_per_core_hour: float | None = None
    progress: bool | None = Field(None, description="progress bar on stderr; None: only on a terminal")
    debug: bool = Field(False, description="show the traceback of unexpected errors")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate train",
        description="Train a classifier, calibrate it on responses it never saw (cross-fitted), evaluate it "
        "on a test split and "
        "export ONE ONNX graph (model + calibrator) with its card into OUT/NAME-VERSION/.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", metavar="FILE", help="TOML or YAML file of options (flags override it)")
    _data_options(p)
    _model_options(p)
    _deep_options(p)
    _cascade_options(p)
    _output_options(p)
    return p


def _data_options(p: argparse.ArgumentParser) -> None:
    """Where the rows come from and how their columns are read."""
    p.add_argument(
        "--data", metavar="DATA", help="breast_cancer (default) | wine | digits (8x8 images) | imbalanced | "
        "sequences (generated token sequences) | mixed_inputs (table + sequence) | PATH.csv"
    )
    p.add_argument("--target", metavar="COL", help="CSV: label column")
    p.add_argument("--segment", metavar="COL", help="CSV: column to slice test metrics by")
    p.add_argument(
        "--missing", metavar="HOW",
        help="missing values: auto (default: numeric training median + missing indicator, categorical "
        "'missing' level, inside the graph) | error (refuse them)",
    )
    p.add_argument("--categorical", metavar="COL,...", type=_columns, help="read these columns as categories")
    p.add_argument("--numeric", metavar="COL,...", type=_columns,
                   help="read these columns as numbers (booleans become 0/1)")
    p.add_argument("--drop", metavar="COL,...", type=_columns, help="leave these columns out")
    p.add_argument(
        "--unknown-category", dest="unknown_category", metavar="HOW",
        help="an unseen level at serving: other (default: the grouped 'other' level, with a warning) | "
        "ignore (all-zeros encoding) | error (refused); for a token sequence: error refuses a token "
        "outside the vocabulary, the others read it as the unknown token",
    )
    p.add_argument("--time-column", dest="time_column", metavar="COL",
                   help="out-of-time split: train on older rows, validate/calibrate/test on newer ones")
    p.add_argument("--describe-data", dest="describe_data", action="store_true",
                   help="print the inferred schema of --data and stop")


def _model_options(p: argparse.ArgumentParser) -> None:
    """The family, its calibration and the search."""
    p.add_argument(
        "--model", metavar="FAMILY", help=f"{' | '.join(FAMILY_NAMES)} (default svm)"
    )
    p.add_argument(
        "--calibration",
        metavar="METHOD",
        help="none | sigmoid (Platt) | isotonic | temperature (softmax(logits/T); families with logits: "
        "logistic_regression, svm, hist_gradient_boosting, mlp) | beta | vector | dirichlet (multiclass) | "
        "auto (default: the lowest out-of-fold Brier score among the methods that apply, none included)",
    )
    p.add_argument(
        "--calibration-cv",
        dest="calibration_cv",
        metavar="K",
        type=int,
        help="cross-fit the calibrator on out-of-fold responses of K folds of train+validation "
        "(default 5); 0 = a dedicated calibration split",
    )
    p.add_argument(
        "--calibration-ensemble",
        dest="calibration_ensemble",
        action=argparse.BooleanOptionalAction,
        help="with --calibration-cv K: export the K (model, calibrator) pairs averaged (default), or "
        "--no-calibration-ensemble: one model refit on all rows + one calibrator",
    )
    p.add_argument(
        "--refit",
        dest="refit",
        action=argparse.BooleanOptionalAction,
        help="with --calibration-cv 0: refit the selected model on train+validation (default)",
    )
    p.add_argument("--trials", metavar="N", type=int, help="random-search candidates (default 8)")
    p.add_argument("--seed", metavar="N", type=int, help="seed of splits, search and models (default 0)")
    p.add_argument(
        "--jobs", metavar="N", type=int,
        help="fit search trials and cross-fit folds N at a time in worker processes (default 1); "
        "the ONNX is byte-identical whatever N is",
    )
    p.add_argument(
        "--ray-address", dest="ray_address", metavar="ADDR",
        help="run the search on the Ray cluster at ADDR, each candidate a Ray Tune trial (folds: Ray tasks; "
        "pip install 'lockgate[ray]'); without --jobs, as many at once as it has CPUs; same ONNX bytes",
    )
    p.add_argument(
        "--metric",
        metavar="M",
        help="selection metric: f1_macro (default) | cohen_kappa | accuracy | log_loss",
    )
    p.add_argument(
        "--overfit-one-batch",
        dest="overfit_one_batch",
        action="store_true",
        help="sanity check for --model mlp: train on one minibatch and diagnose; writes nothing",
    )

def _deep_options(p: argparse.ArgumentParser) -> None:
    """--model mlp only: transfer learning and the network size search."""
    g = p.add_argument_group("deep models (--model mlp)")
    g.add_argument(
        "--init-from", dest="init_from", metavar="PARENT",
        help="transfer learning: start from PARENT's weights (its weights.pt): a registered NAME:VERSION "
        "(see --registry-url), a bundle directory or a weights.pt file; the architecture and input scaling "
        "are inherited; a new output layer is fitted on the parent's features, then all is fine-tuned",
    )
    g.add_argument("--freeze", metavar="N", type=int,
                   help="with --init-from: keep the parent's first N hidden layers frozen (default 0)")
    g.add_argument("--unfreeze-after", dest="unfreeze_after", metavar="EPOCHS", type=int,
                   help="with --freeze: fine-tune the frozen layers too from epoch EPOCHS on")
    g.add_argument(
        "--target2", metavar="COL",
        help="multi-output: a second target column (CSV), a second head on the shared network; the answer "
        "carries both (COL__label/COL__probabilities, or COL__value)",
    )
    g.add_argument("--target2-kind", dest="target2_kind", metavar="KIND",
                   help="auto (default: regression for a numeric column with > 10 distinct values) | "
                   "classification | regression (bounded to the training range)")
    g.add_argument("--gamma", metavar="G", type=float,
                   help="with --target2: the cost gamma*C1 + (1-gamma)*C2 (default: tuned on validation over "
                   "0.25, 0.5, 0.75)")
    g.add_argument(
        "--size-search", dest="size_search", action="store_true",
        help="choose the network size by the chapter's recipe instead of the random search: start at "
        "2 x 128, grow until the training split is overfitted, then regularize (curve + PNG in the card); "
        "--trials caps the steps",
    )


def _cascade_options(p: argparse.ArgumentParser) -> None:
    """Upstream models whose outputs become features, and retraining from a registered card."""
    p.add_argument(
        "--upstream", metavar="NAME:VERSION", action="append",
        help="a cascade: a RELEASED model whose outputs (its registered ONNX graph run on every row) become "
        "features of this one; its input columns must be in the table (repeatable)",
    )
    p.add_argument(
        "--upstream-output", dest="upstream_output", metavar="KIND", action="append",
        choices=("probabilities", "label"),
        help="what each upstream feeds: probabilities (default; NAME__p_CLASS, binary: the positive class "
        "only) or label (one categorical feature NAME__label); once for all, or once per --upstream",
    )
    p.add_argument(
        "--retrain-from", dest="retrain_from", metavar="NAME:VERSION",
        help="retrain a registered model with the options its card recorded, against its upstreams' "
        "released versions (or those given by --upstream); needs --data again; flags given win",
    )
    p.add_argument("--registry-url", dest="registry_url", metavar="URL",
                   help=f"with --upstream / --retrain-from / --init-from (read only): {LOCATION_HELP}")


def _output_options(p: argparse.ArgumentParser) -> None:
    """The bundle's name and place, the cost estimate and what is printed."""
    p.add_argument("--name", metavar="NAME", help="model name (default demo)")
    p.add_argument("--version", metavar="N", type=int, help="model version (default 1)")
    p.add_argument("--out", metavar="DIR", help="parent directory of the bundle (default ./out)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle directory")
    p.add_argument(
        "--price-per-core-hour",
        dest="price_per_core_hour",
        metavar="X",
        type=float,
        help="USD per core-hour for the card's cost estimate (default 0.05)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (never one without a terminal)")
    p.add_argument("--json", action="store_true", help="print the bundle's card as JSON, not the summary")


class _Usage(Exception):
    pass


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _values(ns: argparse.Namespace, settings: TrainSettings) -> dict[str, Any]:
    from training.config import load_config

    given = vars(ns)
    values: dict[str, Any] = {}
    if settings.out is not None:
        values["out"] = settings.out
    if settings.price_per_core_hour is not None:
        values["price_per_core_hour"] = settings.price_per_core_hour
    # without a terminal a progress bar is only carriage returns in a log
    values["progress"] = sys.stderr.isatty() if settings.progress is None else settings.progress
    if "config" in given:
        values.update(load_config(given.pop("config")))
    if given.pop("quiet", False):
        values["progress"] = False
    values.update(given)
    return values


def main(argv: list[str] | None = None) -> int:
    from training.errors import TrainingError

    parser = build_parser()
    parser.exit = _exit  # type: ignore[method-assign]
    parser.error = _error  # type: ignore[method-assign]
    try:
        ns = parser.parse_args(argv)
    except _Usage as e:
        print(f"lockgate train: {e}", file=sys.stderr)
        return 2
    except _Done as e:
        return e.code
    settings = TrainSettings()
    try:
        from training.trainer import train

        overfit = vars(ns).pop("overfit_one_batch", False)
        describe = vars(ns).pop("describe_data", False)
        as_json = vars(ns).pop("json", False)
        config, plan, registry_url = _config(ns, settings)
        if describe:
            from training.datasets import TableOverrides, describe_dataset, load_dataset
            from training.families import get_family

            ds = load_dataset(config.data, config.seed, config.target, config.segment, "auto",
                              TableOverrides(config.categorical, config.numeric, config.drop))
            onehot_max = config.onehot_max or get_family(config.model).onehot_max
            print(describe_dataset(ds, onehot_max, config.rare_min))
            return 0
        if overfit:
            from training.deep.overfit import run_overfit_check

            return run_overfit_check(config)  # 0 can overfit, 1 cannot
        if config.target2 is not None:
            from training.deep.multi_output_train import train_multi_output

            path = train_multi_output(config)
        else:
            path = train(config, registry_url)
    except TrainingError as e:
        print(f"lockgate train: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lockgate train: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:
        if settings.debug:
            raise
        print(
            f"lockgate train: internal error {type(e).__name__}: {_one_line(str(e))[:300]} "
            "(nothing was written; set LOCKGATE_TRAIN_DEBUG=1 for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1
    print(_card_json(path) if as_json else _summary(path, plan))
    return 0


def _config(ns: argparse.Namespace, settings: TrainSettings) -> tuple[Any, Any, str]:
    """The run's TrainConfig (with ``--retrain-from``: the recorded options, see training.retrain), the
    retrain plan or None, and the registry URL upstream models are looked up in."""
    from training.config import TrainConfig
    from training.upstream import registry_url

    retrain_from = vars(ns).pop("retrain_from", None)
    url = registry_url(vars(ns).pop("registry_url", None))
    values = _values(ns, settings)
    plan = None
    if retrain_from is not None:
        from training.retrain import plan_retrain

        plan = plan_retrain(_ref(retrain_from), values, url)
        values = plan.values
    return TrainConfig.from_mapping(values), plan, url


def _ref(text: str) -> Any:
    from cascade_registry.artifacts import ModelRef
    from training.errors import ConfigError

    try:
        return ModelRef.parse(text)
    except ValueError as e:
        raise ConfigError(f"--retrain-from {text!r}: {str(e).splitlines()[0]}",
                          "write NAME:VERSION, e.g. --retrain-from churn:1") from None


class _Done(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _exit(status: int = 0, message: str | None = None) -> None:
    if message:
        print(message, file=sys.stderr, end="")
    raise _Done(status)


def _error(message: str) -> None:
    raise _Usage(f"{message} (see 'lockgate train --help')")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _card_json(path: Path) -> str:
    from cascade_registry.artifacts import ModelBundle

    return ModelBundle.load(path).card.model_dump_json(indent=2)


def _cascade_lines(card: Any, plan: Any) -> list[str]:
    lines = [f"  upstream {u.name}:{u.version} ({u.output}, sha256 {(u.onnx_sha256 or '')[:12]}…) -> "
             f"{', '.join(u.features)}" for u in card.upstream]
    if plan is not None:
        src = plan.source
        moved = ", ".join(f"{n} {a} -> {b}" for n, (a, b) in plan.moved.items()) or "no upstreams"
        same = card.dataset.sha256 == src.dataset.sha256
        lines.append(f"  retrained from {src.ref} with its recorded options; upstreams {moved}")
        lines.append(f"  data sha256 {card.dataset.sha256[:12]}… "
                     + (f"(the same table as {src.ref})" if same
                        else f"differs from {src.ref}'s {src.dataset.sha256[:12]}… (other rows)"))
    return lines


def _summary(path: Path, plan: Any = None) -> str:
    from cascade_registry.artifacts import ModelBundle

    card = ModelBundle.load(path).card
    b, a, m = card.calibration.before, card.calibration.after, card.metrics
    lines = [
        f"trained {card.ref} ({card.family}, {card.task}, {len(card.classes)} classes) "
        f"on {card.dataset.name}",
        f"  selection: {card.search.metric} = {card.search.best_value:.4f} on validation "
        f"({card.search.trials} candidates)",
        f"  test ({m.rows} rows): accuracy {m.accuracy:.4f}  f1_macro {m.f1_macro:.4f}  "
        f"cohen_kappa {m.cohen_kappa:.4f}",
        f"  calibration {card.calibration.method} ({card.calibration.reason.split(';')[0]})",
        f"    before: ece {b.ece:.4f}  mce {b.mce:.4f}  brier {b.brier:.4f}  log_loss {b.log_loss:.4f}",
        f"    after:  ece {a.ece:.4f}  mce {a.mce:.4f}  brier {a.brier:.4f}  log_loss {a.log_loss:.4f}",
        f"  ONNX parity max |dp| {card.export.parity_max_abs_diff:.2e} on {card.export.parity_rows} rows",
    ]
    if card.older_metrics is not None:
        o = card.older_metrics
        lines.append(f"  older slice ({o.rows} rows, out-of-time split on {card.dataset.time_column!r}): "
                     f"accuracy {o.accuracy:.4f}  f1_macro {o.f1_macro:.4f}")
    lines += _cascade_lines(card, plan)
    for head in card.outputs[1:]:
        scores = "  ".join(f"{k} {v:.4f}" for k, v in head.metrics.items())
        lines.append(f"  second head {head.name} ({head.kind}"
                     + (f", range {head.range[0]:g}..{head.range[1]:g}" if head.range else "")
                     + f"; outputs {', '.join(head.onnx_outputs)}): test {scores}")
    if card.parent is not None:
        p = card.parent
        frozen = f"; first {p.frozen_layers} hidden layer(s) frozen" if p.frozen_layers else ""
        if p.frozen_layers and p.unfreeze_after is not None:
            frozen += f" until epoch {p.unfreeze_after}"
        lines.append(f"  initialized from {p} ({p.source}): {p.layers_copied} hidden layer(s) copied, "
                     f"head {p.head}{frozen}")
    lines += [f"  WARNING: {w}" for w in card.calibration.warnings]
    caveat = card.calibration.sample_caveat()
    if caveat is not None:
        lines.append(f"  NOTE: {caveat}")
    if card.recommended_threshold is not None:
        lines.append(f"  recommended threshold for {card.classes[1]!r}: {card.recommended_threshold:.2f}")
    lines.append(f"  runtime {card.runtime.total_seconds:.1f}s, est. cost ${card.cost.estimated_cost:.6f}")
    lines.append(f"bundle: {path}")
    return "\n".join(lines)
