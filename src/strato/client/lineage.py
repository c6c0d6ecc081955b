"""Lineage through the SDK: what a node came from and what came from it.

graph = client.lineage.get("job", "iris-tree", direction="upstream")
for edge in graph.edges:
    print(graph.node(edge.src).name, edge.relation, graph.node(edge.dst).name)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from strato.client.http import Transport
from strato.errors import InvalidArgument
from strato.lineage.model import DIRECTIONS, LineageGraph

BASE = "/api/v1/lineage"


class LineageClient:
    def __init__(self, transport: Transport):
        self._t = transport

    def get(self, kind: str, name: str, *, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """The graph around the node of ``kind`` named (or keyed) ``name``: ``upstream`` (what it came
        from), ``downstream`` (what came from it) or ``both``, up to ``depth`` hops (all when None).
        ``NotFound`` (with "did you mean") when no such node is recorded."""
        if direction not in DIRECTIONS:
            raise InvalidArgument(f"unknown lineage direction {direction!r} (use one of: {', '.join(DIRECTIONS)})")
        if depth is not None and depth < 0:
            raise InvalidArgument(f"depth must be 0 or more, not {depth}")
        params: dict[str, Any] = {"direction": direction}
        if depth is not None:
            params["depth"] = depth
        path = f"{BASE}/{quote(kind, safe='')}/{quote(name, safe='')}"
        return LineageGraph.from_dict(self._t.json("GET", path, params=params))
