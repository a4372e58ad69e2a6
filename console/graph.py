"""The cascade drawn as SVG by Graphviz ``dot``: effective pinned versions on the edges (and the card's,
when a revalidation moved the pin), stale models marked, each node a link to its model page. Drawings are
cached per registry generation."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import OrderedDict

from cascade_registry.sql_graph import CascadeRows

__all__ = ["GraphError", "GraphRenderer", "cascade_dot", "neighbourhood"]


_SIZE = re.compile(r'<svg width="[^"]*" height="[^"]*"')


class GraphError(Exception):
    """Graphviz is missing or failed; the page shows the edges as a table instead."""


def neighbourhood(rows: CascadeRows, focus: str) -> set[str]:
    """``focus`` with everything upstream and downstream of it."""
    down = {u: set(cs) for u, cs in rows.edges.items()}
    up: dict[str, set[str]] = {}
    for u, cs in down.items():
        for c in cs:
            up.setdefault(c, set()).add(u)
    seen = {focus}
    for graph in (down, up):
        todo = [focus]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    return seen


def _labels(rows: CascadeRows, keep: set[str] | None) -> tuple[dict[str, tuple[str, bool]], dict]:
    released = {n: v for (n, v), (s, _) in rows.status.items() if s == "released"}
    stale = {
        n for (n, _), (s, st) in rows.status.items() if st and s in ("released", "gated_passed", "stale")
    }
    names = {n for n, _ in rows.status} | set(rows.kinds)
    if keep is not None:
        names &= keep
    nodes = {}
    for n in sorted(names):
        if rows.kinds.get(n) == "service":
            nodes[n] = (f"{n}\\n(service)", False)
        else:
            ver = f"v{released[n]} released" if n in released else "unreleased"
            nodes[n] = (f"{n}\\n{ver}" + ("\\nSTALE" if n in stale else ""), n in stale)
    edges: dict[tuple[str, str], set[str]] = {}
    for consumer, cver, upstream, uver in rows.pins:
        if upstream in nodes and consumer in nodes:
            trained = rows.trained.get((consumer, cver, upstream), uver)
            moved = "" if trained == uver else f" (revalidated; trained on v{trained})"
            edges.setdefault((upstream, consumer), set()).add(f"v{cver} pins v{uver}{moved}")
    for consumer, model, versions in rows.declared:
        if model in nodes and consumer in nodes:
            edges.setdefault((model, consumer), set()).add(f"declared {versions or '*'}")
    return nodes, edges


def cascade_dot(rows: CascadeRows, keep: set[str] | None = None) -> tuple[str, list[tuple[str, str, str]]]:
    """The DOT text and the edges as (upstream, consumer, label) rows (the text alternative)."""
    nodes, edges = _labels(rows, keep)
    lines = [
        "digraph cascade {",
        '  rankdir=LR; bgcolor="transparent";',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontsize=11];',
        '  edge [fontname="DejaVu Sans", fontsize=9, color="#555555"];',
    ]
    for name, (label, stale) in nodes.items():
        extra = ', fillcolor="#fde2c8", color="#c0392b", penwidth=2' if stale else ""
        shape = ", shape=ellipse" if "(service)" in label else ""
        href = f"/models/{name}" if "(service)" not in label else "/consumers"
        lines.append(f'  "{name}" [label="{label}", URL="{href}", tooltip="{name}"{shape}{extra}];')
    table = []
    for (u, c), labels in sorted(edges.items()):
        text = ", ".join(sorted(labels))
        table.append((u, c, text))
        lines.append(f'  "{u}" -> "{c}" [label="{text}"];')
    lines.append("}")
    return "\n".join(lines), table


class GraphRenderer:
    """Runs ``dot -Tsvg`` (20 s at most) and keeps the last drawings keyed by the caller's cache key."""

    def __init__(self, dot: str = "dot", size: int = 32) -> None:
        self._dot = dot
        self._cache: OrderedDict[object, str] = OrderedDict()
        self._size = size

    def svg(self, key: object, dot_text: str) -> str:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        exe = shutil.which(self._dot)
        if exe is None:
            raise GraphError(f"Graphviz {self._dot!r} is not installed (apt-get install graphviz)")
        try:
            done = subprocess.run(
                [exe, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=20, check=True
            )
        except subprocess.TimeoutExpired:
            raise GraphError("Graphviz took more than 20 s; focus the drawing on one model") from None
        except subprocess.CalledProcessError as e:
            raise GraphError(f"Graphviz failed: {e.stderr.decode(errors='replace').strip()[:200]}") from None
        svg = done.stdout.decode()
        svg = svg[svg.find("<svg") :]
        svg = _SIZE.sub('<svg role="img" aria-labelledby="graph-title"', svg, count=1)
        self._cache[key] = svg
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return svg
