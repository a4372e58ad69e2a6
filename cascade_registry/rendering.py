"""Text for people: tables, version details, impact reports and the cascade as Mermaid or Graphviz DOT."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cascade_registry.entities import ImpactReport, ModelVersionInfo, PinInfo, RolloutInfo, TransitionInfo

if TYPE_CHECKING:  # pragma: no cover - SQLAlchemy stays out of `lockgate registry --help`
    from cascade_registry.rollout_figures import RolloutFigures
    from cascade_registry.sql_graph import CascadeRows

__all__ = [
    "render_dot",
    "render_impact",
    "render_mermaid",
    "render_pins",
    "render_rollout",
    "render_table",
    "render_version",
    "when",
]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def render_version(info: ModelVersionInfo, history: list[TransitionInfo]) -> str:
    card = info.card
    ups = ", ".join(f"{u.name}:{u.version} ({u.output})" for u in card.upstream) or "-"
    lines = [
        f"{info.ref}  [{info.status}{', stale' if info.stale else ''}]",
        f"  bundle       {info.bundle_path}",
        f"  sha256       {info.onnx_sha256}",
        f"  registered   {when(info.registered_at)} by {info.registered_by}",
        f"  released     {when(info.released_at)}" + (f" by {info.released_by}" if info.released_by else ""),
        f"  task         {card.task} ({card.family}), classes {', '.join(card.classes)}",
        f"  calibration  {card.calibration.method}, ECE {card.calibration.after.ece:.4f}",
        f"  test         accuracy {card.metrics.accuracy:.4f}, F1 macro {card.metrics.f1_macro:.4f}",
        f"  upstream     {ups}",
    ]
    if card.parent is not None:
        p = card.parent
        frozen = f", first {p.frozen_layers} layer(s) frozen" if p.frozen_layers else ""
        if p.frozen_layers and p.unfreeze_after is not None:
            frozen += f" until epoch {p.unfreeze_after}"
        lines.append(
            f"  parent       {p} ({p.source}; {p.layers_copied} layer(s) copied, head {p.head}{frozen})"
        )
    if info.stale_reason:
        lines.append(f"  stale        {info.stale_reason}")
    lines.append("  history")
    for t in history:
        reason = f"  ({t.reason})" if t.reason else ""
        lines.append(
            f"    {when(t.at)}  {t.from_status or '-':>12} -> {t.to_status:<12} by {t.actor}{reason}"
        )
    return "\n".join(lines)


def render_impact(report: ImpactReport) -> str:
    released = (
        f"released version {report.released_version}" if report.released_version else "nothing released"
    )
    head = f"impact of {report.model} ({released}): {len(report.entries)} downstream consumer(s)"
    stale = sorted(report.stale_reasons.items())
    head += "".join(f"\n{report.model}:{v} is stale: {why}" for v, why in stale)
    rows = []
    for e in report.entries:
        pins = "; ".join(
            f"{p.upstream}:{p.upstream_version} (as v{p.consumer_version})"
            if p.source == "card"
            else f"{p.upstream} {p.versions or '*'} (declared)"
            for p in e.pins
        )
        rows.append(
            [
                e.depth,
                e.consumer,
                e.kind,
                e.action,
                e.released_version,
                pins,
                ",".join(map(str, e.stale_versions)) or None,
            ]
        )
    text = (
        head
        + "\n"
        + render_table(
            ["depth", "consumer", "kind", "action", "released", "pinned to / declared", "stale"], rows
        )
    )
    if report.older_pins:
        text += (
            f"\nreleasing {report.model}:{report.latest_version} would leave on an older pin\n"
            + render_pins(report.older_pins)
        )
    if report.derived:
        text += "\ntrained from its weights (transfer learning: retrain them to start from a newer parent)\n"
        text += render_table(["version", "parent", "status"],
                             [[str(d.child), str(d.parent), d.status] for d in report.derived])
    if report.waivers:
        text += "\nwaivers\n" + render_table(
            ["version", "when", "by", "owner", "reason", "affected"],
            [
                [str(w.ref), when(w.at), w.actor, w.owner, w.reason, ", ".join(w.affected)]
                for w in report.waivers
            ],
        )
    return text


def render_pins(pins: list[PinInfo]) -> str:
    def metric(p: PinInfo) -> str:
        after = p.evidence.get("after") or {}
        return ", ".join(f"{k} {v}" for k, v in sorted(after.items()) if isinstance(v, int | float)) or "-"

    return render_table(
        ["consumer", "upstream", "pinned", "trained on", "source", "recorded", "by", "metrics after"],
        [
            [
                str(p.consumer),
                p.upstream.name,
                p.upstream.version,
                p.card_version,
                p.source,
                when(p.recorded_at),
                p.actor,
                metric(p),
            ]
            for p in pins
        ],
    )


def _graph_parts(cascade: CascadeRows) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Node -> label, and (upstream, consumer, edge label) triples, sorted for stable output."""
    released = {n: v for (n, v), (s, _) in cascade.status.items() if s == "released"}
    models = sorted({n for n, _ in cascade.status})
    nodes = {m: f"{m} (v{released[m]})" if m in released else f"{m} (unreleased)" for m in models}
    for name, kind in sorted(cascade.kinds.items()):
        if name not in nodes and (kind == "service" or any(name in c for c in cascade.edges.values())):
            nodes[name] = f"{name} ({kind})"
    labels: dict[tuple[str, str], list[str]] = {}
    for consumer, cver, upstream, uver in cascade.pins:
        trained = cascade.trained.get((consumer, cver, upstream), uver)
        label = f"v{cver} on v{uver}" + ("" if trained == uver else f" (revalidated; trained on v{trained})")
        labels.setdefault((upstream, consumer), []).append(label)
    for consumer, model, versions in cascade.declared:
        labels.setdefault((model, consumer), []).append(f"declared {versions or '*'}")
    edges = [(u, c, ", ".join(sorted(set(ls)))) for (u, c), ls in sorted(labels.items())]
    return nodes, edges


def _node_id(name: str) -> str:
    return "n_" + name.replace("-", "_")


def render_mermaid(cascade: CascadeRows) -> str:
    nodes, edges = _graph_parts(cascade)
    lines = ["graph LR"]
    for name, label in nodes.items():
        shape = f'(["{label}"])' if cascade.kinds.get(name) == "service" else f'["{label}"]'
        lines.append(f"    {_node_id(name)}{shape}")
    lines += [f'    {_node_id(u)} -->|"{lbl}"| {_node_id(c)}' for u, c, lbl in edges]
    return "\n".join(lines)


def render_dot(cascade: CascadeRows) -> str:
    nodes, edges = _graph_parts(cascade)
    lines = ["digraph cascade {", "    rankdir=LR;", "    node [shape=box, fontname=Helvetica];"]
    for name, label in nodes.items():
        shape = ", shape=ellipse" if cascade.kinds.get(name) == "service" else ""
        lines.append(f'    {_node_id(name)} [label="{label}"{shape}];')
    lines += [f'    {_node_id(u)} -> {_node_id(c)} [label="{lbl}"];' for u, c, lbl in edges]
    lines.append("}")
    return "\n".join(lines)


def _rollout_line(r: RolloutInfo) -> str:
    how = "shadow" if r.mode == "shadow" else f"canary {r.share:.2%} (sticky per {r.sticky})"
    end = f", ended {when(r.ended_at)} by {r.ended_by}: {r.outcome}" if r.ended_at else ", in progress"
    return f"{r.candidate} {how} beside {r.live}, started {when(r.started_at)} by {r.started_by}{end}"


def render_rollout(
    name: str, history: list[RolloutInfo], figures: RolloutFigures | None, keep: list[str]
) -> str:
    """A model's rollout in progress (or none), the gateway's figures by role, and the rollouts before."""
    current = history[0] if history and history[0].ended_at is None else None
    lines = [f"{name}: " + (_rollout_line(current) if current else "no rollout in progress")]
    if keep:
        lines.append(f"downstream models keep their pins (never routed to a candidate): {', '.join(keep)}")
    if figures is not None:
        lines += ["", f"measured by {figures.gateway} (since it started):"]
        lines.append(
            render_table(
                ["role", "version", "rows", "mean ms", "p95 ms"],
                [
                    [
                        f.role,
                        f.version,
                        f.rows,
                        None if f.latency_mean_ms is None else f"{f.latency_mean_ms:.3f}",
                        None if f.latency_p95_ms is None else f"<= {f.latency_p95_ms:g}",
                    ]
                    for f in figures.roles
                ],
            )
        )
        if figures.compared_rows:
            lines.append(
                f"agreement: {figures.same_rows}/{figures.compared_rows} rows with the same label "
                f"({figures.agreement:.2%}); |dp| mean {figures.mean_abs_dp or 0:.4f}, "
                f"max {figures.max_abs_dp or 0:.4f}"
            )
        if figures.dropped:
            lines.append(
                "shadow comparisons dropped: "
                + ", ".join(f"{k} {v}" for k, v in sorted(figures.dropped.items()))
            )
    if current is not None:
        lines.append(
            f"calibration on labelled traffic: 'lockgate monitor {name}' (live) and "
            f"'lockgate monitor {name} --version {current.candidate.version} --role {current.mode}'"
        )
    before = history[1:] if current else history
    if before:
        lines += ["", "earlier rollouts:"] + [f"  {_rollout_line(r)}" for r in before]
    return "\n".join(lines)
