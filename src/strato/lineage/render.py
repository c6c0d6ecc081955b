"""Showing a lineage graph: JSON for programs, Graphviz DOT for pictures, a Rich tree for the terminal.

- ``to_json``: the graph's ``to_dict`` with sorted keys, nodes and edges, so equal graphs give equal text.
- ``to_dot``: a ``digraph`` with every id and label quoted; node labels ``kind\\nname``, edge labels the
  relation, one shape per kind, the root drawn bold. Render it with ``dot -Tsvg``.
- ``to_rich``: a tree from the root, upstream (what it came from) and/or downstream (what came from
  it); a node reached twice is expanded once and marked ``(shown elsewhere)`` at its other places, so a
  cycle or a diamond prints finitely. Rich is imported only here, when a terminal view is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from strato.lineage import kinds
from strato.lineage.model import LineageEdge, LineageGraph, LineageNode

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table
    from rich.tree import Tree

SHAPES = {
    kinds.DATASET: "cylinder",
    kinds.CODE: "note",
    kinds.JOB: "box",
    kinds.TUNING_JOB: "box3d",
    kinds.RUN: "ellipse",
    kinds.MODEL_VERSION: "component",
    kinds.ENDPOINT: "doubleoctagon",
    kinds.FEATURE_VIEW: "tab",
    kinds.PIPELINE_RUN: "hexagon",
}


def to_json(graph: LineageGraph) -> str:
    return json.dumps(graph.to_dict(), indent=2, sort_keys=True, default=str)


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string: quotes and backslashes escaped, line breaks as ``\\n``.
    A backslash at the very end would escape the closing quote, so a space follows it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\\n").replace("\n", "\\n")
    escaped = escaped.replace("\r", "\\n")
    if escaped.endswith("\\"):
        escaped += " "
    return f'"{escaped}"'


def _dot_label(kind: str, name: str) -> str:
    """``kind`` and ``name`` on two lines (``\\n`` is Graphviz's centered line break)."""
    return dot_quote(kind)[:-1] + "\\n" + dot_quote(name)[1:]


def to_dot(graph: LineageGraph) -> str:
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in graph.sorted_nodes():
        attrs = [f"label={_dot_label(node.kind, node.name)}", f"shape={SHAPES.get(node.kind, 'box')}"]
        if node.id == graph.root:
            attrs.append("penwidth=2")
        lines.append(f"  {dot_quote(node.id)} [{', '.join(attrs)}];")
    for edge in graph.sorted_edges():
        lines.append(f"  {dot_quote(edge.src)} -> {dot_quote(edge.dst)} [label={dot_quote(edge.relation)}];")
    if graph.truncated:
        lines.append("  // the depth limit left more nodes out")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(node: LineageNode) -> str:
    from rich.markup import escape

    text = f"[bold]{escape(node.kind)}[/] {escape(node.name)}"
    if node.key != node.name:  # a dataset's key repeats its name: show only the fingerprint part
        key = node.key[len(node.name) :] if node.key.startswith(f"{node.name}@") else node.key
        text += f" [dim]{escape(key)}[/]"
    return text


def to_tree(graph: LineageGraph) -> Tree:
    """The graph as a tree from its root; each child line ends with the relation that links it."""
    from rich.markup import escape
    from rich.tree import Tree

    root = graph.root_node
    tree = Tree(_label(root))
    walks = []
    if graph.direction in ("upstream", "both"):
        walks.append(("upstream: what it came from", graph.parents))
    if graph.direction in ("downstream", "both"):
        walks.append(("downstream: what came from it", graph.children))
    for title, step in walks:
        branch = tree.add(f"[dim]{title}[/]") if len(walks) > 1 else tree
        expanded = {root.id}
        stack: list[tuple[Tree, str]] = [(branch, root.id)]
        while stack:  # depth first with an explicit stack: a long chain cannot hit the recursion limit
            parent, id_ = stack.pop()
            pairs: list[tuple[LineageEdge, LineageNode]] = step(id_)
            if not pairs and parent is branch and branch is not tree:
                branch.add("[dim](nothing recorded)[/]")
            added = []
            for edge, node in pairs:
                line = f"{_label(node)}  [italic dim]{escape(edge.relation)}[/]"
                if node.id in expanded:
                    parent.add(f"{line} [dim](shown elsewhere)[/]")
                    continue
                expanded.add(node.id)
                added.append((parent.add(line), node.id))
            stack.extend(reversed(added))
    return tree


def _table(columns: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def nodes_table(graph: LineageGraph) -> Table:
    return _table(("KIND", "NAME", "KEY"), ((n.kind, n.name, n.key) for n in graph.sorted_nodes()))


def edges_table(graph: LineageGraph) -> Table:
    return _table(("FROM", "RELATION", "TO"), ((e.src, e.relation, e.dst) for e in graph.sorted_edges()))


def to_rich(graph: LineageGraph) -> Group:
    """The tree, then the notes (which node a repeated name chose, whether the depth limit cut)."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Tree | Text] = [to_tree(graph)]
    for note in graph.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    if graph.truncated:
        parts.append(Text(f"(depth {graph.depth} reached: more lineage lies beyond; raise --depth)", style="dim"))
    return Group(*parts)
