"""Reading lineage: find a node by kind and name (or key), and walk the edges around it.

``graph(kind, name, direction, depth)`` is a breadth-first search from that node: ``upstream`` follows
edges backwards (what it came from: datasets, code, the job a run tracked), ``downstream`` forwards
(what came from it: runs, model versions, endpoints), ``both`` does the two walks and joins them (the
node's ancestors and descendants, not its siblings). A node is visited once, so a cycle ends the walk;
the edges that close it are still returned. ``depth`` counts hops from the node (0: the node alone).

A name may be recorded more than once for a kind: a job deleted and created again under the same name
has a new uid (its key), a dataset URI read again with new content a new fingerprint. The newest node
wins, and the graph's ``notes`` say which one was taken and how many there were.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strato.errors import InvalidArgument, NotFound
from strato.lineage import kinds
from strato.lineage.model import DIRECTIONS, Direction, LineageEdge, LineageGraph, LineageNode
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import lineage_edges, lineage_nodes

# Other spellings a user may type for a kind (after lower-casing and turning "-" and " " into "_").
KIND_ALIASES = {
    "trainingjob": kinds.JOB,
    "training_job": kinds.JOB,
    "tuningjob": kinds.TUNING_JOB,
    "tuning": kinds.TUNING_JOB,
    "model": kinds.MODEL_VERSION,
    "modelversion": kinds.MODEL_VERSION,
    "featureview": kinds.FEATURE_VIEW,
    "pipelinerun": kinds.PIPELINE_RUN,
    "batchtransformjob": kinds.BATCH_TRANSFORM,
    "batch": kinds.BATCH_TRANSFORM,
}

_CHUNK = 500  # ids per IN (...): far below SQLite's and PostgreSQL's parameter limits
_SUGGESTION_POOL = 5000  # names of a kind compared for "did you mean" (the newest ones)


def resolve_kind(kind: str) -> str:
    """The canonical kind for ``kind`` (``jobs``, ``TrainingJob``, ``model-version`` ...), or
    ``InvalidArgument`` naming the kinds and the closest one."""
    norm = kind.strip().lower().replace("-", "_").replace(" ", "_")
    for candidate in (norm, norm[:-1] if norm.endswith("s") else None):
        if candidate is None:
            continue
        if candidate in kinds.NODE_KINDS:
            return candidate
        if candidate in KIND_ALIASES:
            return KIND_ALIASES[candidate]
    guess = difflib.get_close_matches(norm, [*kinds.NODE_KINDS, *KIND_ALIASES], n=1)
    hint = f"; did you mean {KIND_ALIASES.get(guess[0], guess[0])!r}?" if guess else ""
    raise InvalidArgument(
        f"unknown lineage kind {kind!r}{hint} (kinds: {', '.join(sorted(kinds.NODE_KINDS))})",
        details={"kind": kind, "kinds": sorted(kinds.NODE_KINDS)},
    )


def check_direction(direction: str) -> Direction:
    for known in DIRECTIONS:
        if direction == known:
            return known
    raise InvalidArgument(f"unknown lineage direction {direction!r} (use one of: {', '.join(DIRECTIONS)})")


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "at an unknown time"


class LineageQueries:
    """Read-only queries over the lineage tables of one metadata store."""

    def __init__(self, store: MetadataStore):
        self.store = store

    # Finding the start node ------------------------------------------------------------------------
    def find(self, kind: str, name: str) -> tuple[LineageNode, list[str]]:
        """The node of ``kind`` whose key is ``name``, else the newest whose name is ``name``; with
        notes saying which was taken when the name is recorded more than once. ``NotFound`` otherwise."""
        kind = resolve_kind(kind)
        with self.store.reading() as conn:
            _, node, notes = self._find(conn, kind, name)
        return node, notes

    def _find(self, conn: Connection, kind: str, name: str) -> tuple[int, LineageNode, list[str]]:
        columns = (
            lineage_nodes.c.id,
            lineage_nodes.c.kind,
            lineage_nodes.c.key,
            lineage_nodes.c.name,
            lineage_nodes.c.attrs,
            lineage_nodes.c.created_at,
        )
        row = conn.execute(sa.select(*columns).where(lineage_nodes.c.kind == kind, lineage_nodes.c.key == name)).first()
        if row is not None:
            return int(row.id), _node(row), []
        rows = conn.execute(
            sa.select(*columns)
            .where(lineage_nodes.c.kind == kind, lineage_nodes.c.name == name)
            .order_by(lineage_nodes.c.created_at.desc(), lineage_nodes.c.id.desc())
        ).all()
        if not rows:
            raise self._not_found(conn, kind, name)
        newest = rows[0]
        notes = []
        if len(rows) > 1:
            notes.append(
                f"{len(rows)} {kind} nodes are named {name!r}; showing the newest (key {newest.key}, "
                f"recorded {_when(newest.created_at)}); pass a key to choose another"
            )
        return int(newest.id), _node(newest), notes

    def _not_found(self, conn: Connection, kind: str, name: str) -> NotFound:
        recent = conn.execute(
            sa.select(lineage_nodes.c.name, lineage_nodes.c.key)
            .where(lineage_nodes.c.kind == kind)
            .order_by(lineage_nodes.c.created_at.desc())
            .limit(_SUGGESTION_POOL)
        ).all()
        known = sorted({r.name for r in recent} | {r.key for r in recent})
        suggestions = difflib.get_close_matches(name, known, n=3)
        elsewhere = sorted(
            set(
                conn.execute(
                    sa.select(lineage_nodes.c.kind)
                    .where(sa.or_(lineage_nodes.c.name == name, lineage_nodes.c.key == name))
                    .distinct()
                ).scalars()
            )
        )
        message = f"no {kind} named {name!r} in the lineage"
        if suggestions:
            message += f"; did you mean {' or '.join(repr(s) for s in suggestions)}?"
        elif not recent:
            message += f" (none of kind {kind} is recorded yet)"
        if elsewhere:
            message += f"; {name!r} is recorded as: {', '.join(elsewhere)}"
        message += f" (kinds: {', '.join(sorted(kinds.NODE_KINDS))})"
        return NotFound(
            message,
            details={"kind": kind, "name": name, "suggestions": suggestions, "recorded_as": elsewhere},
        )

    # Walking the graph -----------------------------------------------------------------------------
    def graph(self, kind: str, name: str, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """The nodes and edges upstream of, downstream of, or around the node ``kind``/``name``."""
        kind = resolve_kind(kind)
        walk = check_direction(direction)
        if depth is not None and depth < 0:
            raise InvalidArgument(f"depth must be 0 or more, not {depth}")
        with self.store.reading() as conn:
            root_id, root, notes = self._find(conn, kind, name)
            node_ids = {root_id}
            edges: set[tuple[int, int, str]] = set()
            truncated = False
            for forward in {"upstream": (False,), "downstream": (True,), "both": (False, True)}[walk]:
                seen, found, cut = _breadth_first(conn, root_id, forward=forward, depth=depth)
                node_ids |= seen
                edges |= found
                truncated = truncated or cut
            nodes = _load_nodes(conn, node_ids)
        return LineageGraph(
            root=root.id,
            direction=walk,
            depth=depth,
            nodes=sorted(nodes.values(), key=lambda n: (n.kind, n.name, n.key)),
            edges=sorted(
                (LineageEdge(nodes[src].id, nodes[dst].id, relation) for src, dst, relation in edges),
                key=lambda e: (e.src, e.dst, e.relation),
            ),
            truncated=truncated,
            notes=notes,
        )


def _node(row: Any) -> LineageNode:
    return LineageNode(
        kind=row.kind, key=row.key, name=row.name, attrs=dict(row.attrs or {}), created_at=row.created_at
    )


def _edges_at(conn: Connection, frontier: Iterable[int], *, forward: bool) -> list[tuple[int, int, str]]:
    """Every edge out of (``forward``) or into the nodes of ``frontier``, as (src, dst, relation)."""
    near = lineage_edges.c.src if forward else lineage_edges.c.dst
    out: list[tuple[int, int, str]] = []
    for chunk in _chunks(sorted(set(frontier))):
        rows = conn.execute(
            sa.select(lineage_edges.c.src, lineage_edges.c.dst, lineage_edges.c.relation).where(near.in_(chunk))
        )
        out.extend((int(r.src), int(r.dst), str(r.relation)) for r in rows)
    return out


def _breadth_first(
    conn: Connection, root: int, *, forward: bool, depth: int | None
) -> tuple[set[int], set[tuple[int, int, str]], bool]:
    """Node ids reached from ``root`` within ``depth`` hops, the edges followed, and whether the depth
    limit left edges unfollowed. One query per level; a node is expanded once, so cycles end."""
    seen = {root}
    edges: set[tuple[int, int, str]] = set()
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        following: list[int] = []
        for edge in _edges_at(conn, frontier, forward=forward):
            edges.add(edge)
            other = edge[1] if forward else edge[0]
            if other not in seen:
                seen.add(other)
                following.append(other)
        frontier = following
        level += 1
    truncated = bool(frontier) and any(e not in edges for e in _edges_at(conn, frontier, forward=forward))
    return seen, edges, truncated


def _load_nodes(conn: Connection, ids: set[int]) -> dict[int, LineageNode]:
    nodes: dict[int, LineageNode] = {}
    for chunk in _chunks(sorted(ids)):
        rows = conn.execute(
            sa.select(
                lineage_nodes.c.id,
                lineage_nodes.c.kind,
                lineage_nodes.c.key,
                lineage_nodes.c.name,
                lineage_nodes.c.attrs,
                lineage_nodes.c.created_at,
            ).where(lineage_nodes.c.id.in_(chunk))
        )
        for row in rows:
            nodes[int(row.id)] = _node(row)
    return nodes


def find_node(store: MetadataStore, kind: str, name: str) -> tuple[LineageNode, list[str]]:
    """``LineageQueries(store).find(kind, name)``."""
    return LineageQueries(store).find(kind, name)


def lineage_graph(
    store: MetadataStore, kind: str, name: str, direction: str = "both", depth: int | None = None
) -> LineageGraph:
    """``LineageQueries(store).graph(kind, name, direction, depth)``."""
    return LineageQueries(store).graph(kind, name, direction, depth)
