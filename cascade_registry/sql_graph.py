"""Reading the cascade out of the database: edges between names and card pins of live versions."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, select

from cascade_registry.entities import LIVE_STATUSES
from cascade_registry.schema import consumers, declarations, model_versions

__all__ = ["CascadeRows", "load_cascade"]


class CascadeRows:
    """One consistent read of the cascade.

    ``edges``: upstream model name -> consumer names (manual declarations + card pins of live versions).
    ``pins``: (consumer, consumer_version, upstream, upstream_version) card pins of live versions.
    ``declared``: (consumer, model, versions) manual declarations.
    ``kinds``: consumer name -> kind. ``status``: (name, version) -> (status, stale) for every version.
    """

    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = defaultdict(set)
        self.pins: list[tuple[str, int, str, int]] = []
        self.declared: list[tuple[str, str, str | None]] = []
        self.kinds: dict[str, str] = {}
        self.status: dict[tuple[str, int], tuple[str, bool]] = {}


def load_cascade(conn: Connection) -> CascadeRows:
    rows = CascadeRows()
    for name, version, status, stale in conn.execute(
        select(
            model_versions.c.name, model_versions.c.version, model_versions.c.status, model_versions.c.stale
        )
    ):
        rows.status[(name, version)] = (status, bool(stale))
    for name, kind in conn.execute(select(consumers.c.name, consumers.c.kind)):
        rows.kinds[name] = kind
    query = select(
        consumers.c.name,
        declarations.c.model_name,
        declarations.c.versions,
        declarations.c.source,
        declarations.c.consumer_version,
        declarations.c.pinned_version,
    ).join(consumers, consumers.c.id == declarations.c.consumer_id)
    for consumer, model, versions, source, cver, pinned in conn.execute(query):
        if source == "card":
            state = rows.status.get((consumer, cver))
            if state is None or state[0] not in LIVE_STATUSES:
                continue
            rows.pins.append((consumer, cver, model, pinned))
        else:
            rows.declared.append((consumer, model, versions))
        rows.edges[model].add(consumer)
    return rows
