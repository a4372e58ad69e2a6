"""What the version page shows, computed from entities: the card as readable sections and the diff against
the released version of the model."""

from __future__ import annotations

from typing import Any

from cascade_registry.artifacts import ModelCard

__all__ = ["card_sections", "diff_cards", "fmt"]


def fmt(value: Any) -> str:
    """A number or value as one short readable cell."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    return str(value)


def card_sections(card: ModelCard) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(label, value)]) for the key/value parts of the card (tables live in the template)."""
    ds = card.dataset
    infra, rt, cost = card.infrastructure, card.runtime, card.cost
    return [
        (
            "Data",
            [
                ("data set", f"{ds.name}: {ds.description}"),
                ("source", ds.source),
                ("rows x features", f"{ds.rows} x {ds.n_features}"),
                ("sha256", ds.sha256),
                ("splits disjoint", fmt(ds.splits_disjoint)),
                ("missing values", ds.missing_values),
            ],
        ),
        (
            "Hyperparameters and search",
            [
                ("chosen", fmt(card.hyperparameters)),
                ("method", f"{card.search.method}, {card.search.trials} trials"),
                ("ranges tried", fmt(card.search.ranges)),
                (
                    "selection",
                    f"{card.search.selection} ({card.search.metric}: {card.search.metric_definition})",
                ),
                ("best value", fmt(card.search.best_value)),
                ("seed", str(card.seed)),
            ],
        ),
        (
            "Infrastructure",
            [
                ("cpu", f"{infra.cpu_model}, {infra.cores} cores, {infra.ram_gb:g} GB RAM, {infra.device}"),
                ("os / python", f"{infra.os} / {infra.python}"),
                ("libraries", fmt(infra.libraries)),
            ],
        ),
        (
            "Runtime and cost",
            [
                ("total", f"{rt.total_seconds:.2f} s (search {rt.search_seconds:.2f} s)"),
                ("calibration / export", f"{rt.calibration_seconds:.2f} s / {rt.export_seconds:.2f} s"),
                ("cost", f"{cost.estimated_cost:.4f} {cost.currency} ({cost.core_hours:.4f} core-hours)"),
            ],
        ),
    ]


def _metrics(card: ModelCard) -> dict[str, float]:
    m, c = card.metrics, card.calibration
    return {
        "accuracy": m.accuracy,
        "f1_macro": m.f1_macro,
        "log_loss": m.log_loss,
        "brier": m.brier,
        "ece (test)": m.ece,
        "ece before calibration": c.before.ece,
        "ece after calibration": c.after.ece,
        "brier after calibration": c.after.brier,
    }


def diff_cards(card: ModelCard, released: ModelCard) -> list[tuple[str, str, str, str, str]]:
    """(what, key, this version, released, change) for metrics, calibration and hyperparameters."""
    rows = []
    mine, theirs = _metrics(card), _metrics(released)
    for key, value in mine.items():
        delta = value - theirs[key]
        rows.append(("metric", key, fmt(value), fmt(theirs[key]), f"{delta:+.4f}"))
    rows.append(
        (
            "calibration",
            "method",
            card.calibration.method,
            released.calibration.method,
            "same" if card.calibration.method == released.calibration.method else "changed",
        )
    )
    keys = sorted(set(card.hyperparameters) | set(released.hyperparameters))
    for key in keys:
        a, b = card.hyperparameters.get(key), released.hyperparameters.get(key)
        rows.append(("hyperparameter", key, fmt(a), fmt(b), "same" if a == b else "changed"))
    return rows
