"""A lineage graph as the API answers it: nodes (kind, key, name, attrs) and edges (src, relation, dst).

Plain dataclasses with no database or HTTP import, so the server, the SDK and the CLI share them. A
node's ``id`` is ``"<kind>:<key>"``, stable across databases (row ids are not), and edges name nodes by
it. ``to_dict`` is sorted (nodes by kind, name, key; edges by src, dst, relation), so equal graphs give
equal JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream", "both")


def node_id(kind: str, key: str) -> str:
    return f"{kind}:{key}"


@dataclass(frozen=True)
class LineageNode:
    kind: str
    key: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None

    @property
    def id(self) -> str:
        return node_id(self.kind, self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "name": self.name,
            "attrs": dict(self.attrs),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageNode:
        return cls(
            kind=str(data["kind"]),
            key=str(data["key"]),
            name=str(data.get("name") or data["key"]),
            attrs=dict(data.get("attrs") or {}),
            created_at=data.get("created_at"),
        )


@dataclass(frozen=True)
class LineageEdge:
    """``src <relation> dst``, read as the kinds' relations are (``dataset input_of job``)."""

    src: str  # node id
    dst: str  # node id
    relation: str

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageEdge:
        return cls(src=str(data["src"]), dst=str(data["dst"]), relation=str(data["relation"]))


@dataclass
class LineageGraph:
    """What ``root`` came from (upstream), what came from it (downstream), or both, up to ``depth`` hops
    (None: all). ``truncated`` says the depth limit cut off further nodes; ``notes`` say how the root
    was chosen when its name was ambiguous."""

    root: str  # node id
    direction: Direction
    depth: int | None
    nodes: list[LineageNode] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def node(self, id_: str) -> LineageNode:
        for node in self.nodes:
            if node.id == id_:
                return node
        raise KeyError(id_)

    @property
    def root_node(self) -> LineageNode:
        return self.node(self.root)

    def parents(self, id_: str) -> list[tuple[LineageEdge, LineageNode]]:
        """Edges into ``id_`` with their source nodes (what it came from), sorted."""
        by_id = {n.id: n for n in self.nodes}
        return [(e, by_id[e.src]) for e in self.sorted_edges() if e.dst == id_ and e.src in by_id]

    def children(self, id_: str) -> list[tuple[LineageEdge, LineageNode]]:
        """Edges out of ``id_`` with their destination nodes (what came from it), sorted."""
        by_id = {n.id: n for n in self.nodes}
        return [(e, by_id[e.dst]) for e in self.sorted_edges() if e.src == id_ and e.dst in by_id]

    def sorted_nodes(self) -> list[LineageNode]:
        return sorted(self.nodes, key=lambda n: (n.kind, n.name, n.key))

    def sorted_edges(self) -> list[LineageEdge]:
        return sorted(self.edges, key=lambda e: (e.src, e.dst, e.relation))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "notes": list(self.notes),
            "nodes": [n.to_dict() for n in self.sorted_nodes()],
            "edges": [e.to_dict() for e in self.sorted_edges()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageGraph:
        direction = data.get("direction", "both")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown lineage direction {direction!r}")
        return cls(
            root=str(data["root"]),
            direction=direction,
            depth=data.get("depth"),
            nodes=[LineageNode.from_dict(n) for n in data.get("nodes", [])],
            edges=[LineageEdge.from_dict(e) for e in data.get("edges", [])],
            truncated=bool(data.get("truncated", False)),
            notes=[str(n) for n in data.get("notes", [])],
        )
