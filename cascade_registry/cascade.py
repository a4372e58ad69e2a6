"""The cascade as a graph of model names (upstream -> downstream consumers): pure functions for cycle
detection, topological impact order and stale marking. No storage here."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

__all__ = ["Edges", "find_cycle", "downstream_layers", "stale_closure"]

#: upstream name -> set of downstream consumer names
Edges = Mapping[str, set[str]]


def find_cycle(edges: Edges, upstream: str, downstream: str) -> list[str] | None:
    """The cycle that the new edge ``upstream -> downstream`` would close, as names (first == last)."""
    if upstream == downstream:
        return [upstream, upstream]
    parent: dict[str, str] = {downstream: ""}
    queue = deque([downstream])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges.get(node, ())):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == upstream:
                path = [upstream]
                while path[-1] != downstream:
                    path.append(parent[path[-1]])
                return [upstream, *reversed(path)]
            queue.append(nxt)
    return None


def downstream_layers(edges: Edges, root: str) -> list[tuple[str, int]]:
    """Every node reachable from ``root`` with its depth (longest path from root), in topological order.

    Sorting by (longest-path depth, name) is a topological order: an edge u -> v implies depth(v) > depth(u).
    """
    reachable: set[str] = set()
    stack = [root]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in reachable and nxt != root:
                reachable.add(nxt)
                stack.append(nxt)
    indegree: dict[str, int] = {n: 0 for n in reachable}
    for node in reachable:  # edges out of root are satisfied from the start
        for nxt in edges.get(node, ()):
            if nxt in indegree:
                indegree[nxt] += 1
    depth: dict[str, int] = {n: 1 for n in reachable}
    ready = deque(n for n, d in indegree.items() if d == 0)
    ordered: list[str] = []
    while ready:
        node = ready.popleft()
        ordered.append(node)
        for nxt in edges.get(node, ()):
            if nxt in indegree:
                depth[nxt] = max(depth[nxt], depth[node] + 1)
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
    # nodes on a (refused, so impossible) cycle never reach indegree 0; list them last rather than lose them
    ordered += sorted(reachable.difference(ordered))
    return sorted(((n, depth[n]) for n in ordered), key=lambda x: (x[1], x[0]))


def stale_closure(
    pins: Iterable[tuple[str, int, str, int]], released_name: str, released_version: int
) -> dict[tuple[str, int], str]:
    """Versions made stale by releasing ``released_name:released_version``, with the reason for each.

    ``pins`` are (consumer, consumer_version, upstream, upstream_version) card edges of live versions.
    Direct consumers trained on an older upstream version are stale; so is, transitively, every version
    trained on a stale version.
    """
    by_upstream: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    direct: list[tuple[tuple[str, int], int]] = []
    for consumer, cver, upstream, uver in pins:
        by_upstream[(upstream, uver)].append((consumer, cver))
        if upstream == released_name and uver < released_version:
            direct.append(((consumer, cver), uver))
    stale: dict[tuple[str, int], str] = {}
    queue: deque[tuple[str, int]] = deque()
    for node, uver in sorted(direct):
        if node not in stale:
            stale[node] = (
                f"trained on {released_name}:{uver}; {released_name}:{released_version} was released"
            )
            queue.append(node)
    while queue:
        name, ver = queue.popleft()
        for node in sorted(by_upstream.get((name, ver), ())):
            if node not in stale:
                stale[node] = f"trained on {name}:{ver}, which is stale"
                queue.append(node)
    return stale
