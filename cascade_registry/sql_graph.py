"""Reading the cascade out of the database: edges between names and card pins of live versions."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection

from cascade_registry.entities import LIVE_STATUSES

__all__ = ["CascadeRows", "load_cascade"]


class CascadeRows:
    """One consistent read of the cascade.

    ``edges``: upstream model name -> consumer names (manual declarations + card pins of live versions).
    ``pins``: (consumer, consumer_version, upstream, upstream_version) effective pins of live versions (the
    newest ``cascade_pins`` row: the card's, or a revalidated one).
    ``trained``: (consumer, consumer_version, upstream) -> the version its card was trained against, for the
    pins a revalidation moved (every other pin is the card's).
    ``declared``: (consumer, model, versions) manual declarations.
    ``kinds``: consumer name -> kind. ``status``: (name, version) -> (status, stale) for every version.
    """

    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = defaultdict(set)
        self.pins: list[tuple[str, int, str, int]] = []
        self.trained: dict[tuple[str, int, str], int] = {}
        self.declared: list[tuple[str, str, str | None]] = []
        self.kinds: dict[str, str] = {}
        self.status: dict[tuple[str, int], tuple[str, bool]] = {}


_STATUS_SQL = "SELECT name, version, status, stale FROM model_versions"
_KINDS_SQL = "SELECT name, kind FROM consumers"
#: card pins equal the card declarations' ``pinned_version``: only revalidated rows can move an edge
_PINS_SQL = (
    "SELECT consumer, consumer_version, upstream, upstream_version FROM cascade_pins "
    "WHERE source = 'revalidated' ORDER BY id"
)
_DECLARATIONS_SQL = (
    "SELECT c.name, d.model_name, d.versions, d.source, d.consumer_version, d.pinned_version "
    "FROM declarations d JOIN consumers c ON c.id = d.consumer_id"
)


def load_cascade(conn: Connection) -> CascadeRows:
    """Read the whole cascade in four plain queries on the DBAPI cursor of ``conn``'s transaction
    (row objects would cost more than the graph work on a 50,000-edge cascade)."""
    rows = CascadeRows()
    cursor = conn.connection.cursor()
    try:
        cursor.execute(_STATUS_SQL)
        for name, version, status, stale in cursor.fetchall():
            rows.status[(name, version)] = (status, bool(stale))
        cursor.execute(_KINDS_SQL)
        rows.kinds = dict(cursor.fetchall())
        cursor.execute(_DECLARATIONS_SQL)
        declared = cursor.fetchall()
        cursor.execute(_PINS_SQL)
        effective = {(c, cv, u): uv for c, cv, u, uv in cursor.fetchall()}  # the newest row wins
    finally:
        cursor.close()
    live = set(LIVE_STATUSES)
    status = rows.status
    for consumer, model, versions, source, cver, pinned in declared:
        if source == "card":
            state = status.get((consumer, cver))
            if state is None or state[0] not in live:
                continue
            if effective:
                moved = effective.get((consumer, cver, model), pinned)
                if moved != pinned:
                    rows.trained[(consumer, cver, model)] = pinned
                    pinned = moved
            rows.pins.append((consumer, cver, model, pinned))
        else:
            rows.declared.append((consumer, model, versions))
        rows.edges[model].add(consumer)
    return rows
