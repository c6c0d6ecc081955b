"""Rendering: JSON that round-trips and is stable, DOT that Graphviz's grammar accepts (checked with a
tokenizer that follows Graphviz's lexer for quoted strings), and the terminal tree."""

from __future__ import annotations

import json
import random
import re

from rich.console import Console

from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.lineage.model import LineageEdge, LineageGraph, LineageNode
from strato.lineage.render import dot_quote, edges_table, nodes_table, to_dot, to_json, to_rich

_TOKEN = re.compile(
    r'\s*(?:(?P<q>")|(?P<arrow>->)|(?P<punct>[{}\[\];,=])|(?P<word>[A-Za-z0-9_.]+)|(?P<comment>//[^\n]*))'
)


def tokenize(text: str) -> list[tuple[str, str]]:
    """(type, value) tokens of DOT source; quoted strings decoded as Graphviz's lexer does: inside
    quotes only ``\\"`` is an escape, any other backslash is kept as it is."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        assert match, f"unexpected DOT text at {pos}: {text[pos : pos + 40]!r}"
        pos = match.end()
        if match.group("q"):
            value = []
            while True:
                assert pos < len(text), "unterminated quoted string"
                if text.startswith('\\"', pos):
                    value.append('"')
                    pos += 2
                elif text[pos] == '"':
                    pos += 1
                    break
                else:
                    assert text[pos] != "\n", "raw line break in a quoted string"
                    value.append(text[pos])
                    pos += 1
            tokens.append(("id", "".join(value)))
        elif match.group("comment"):
            continue
        else:
            kind = next(k for k in ("arrow", "punct", "word") if match.group(k))
            tokens.append((kind, match.group(kind)))
    return tokens


def statements(dot: str) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, str, dict[str, str]]]]:
    """Parse ``digraph NAME { ... }`` with node and edge statements into (nodes, edges)."""
    tokens = tokenize(dot)
    assert tokens[:3] == [("word", "digraph"), ("word", "lineage"), ("punct", "{")]
    assert tokens[-1] == ("punct", "}")
    body = tokens[3:-1]
    nodes: list[tuple[str, dict[str, str]]] = []
    edges: list[tuple[str, str, dict[str, str]]] = []
    i = 0

    def attrs() -> dict[str, str]:
        nonlocal i
        out: dict[str, str] = {}
        if i < len(body) and body[i] == ("punct", "["):
            i += 1
            while body[i] != ("punct", "]"):
                key, eq, value = body[i], body[i + 1], body[i + 2]
                assert key[0] == "word" and eq == ("punct", "=") and value[0] in ("id", "word"), body[i : i + 3]
                out[key[1]] = value[1]
                i += 3
                if body[i] == ("punct", ","):
                    i += 1
            i += 1
        return out

    while i < len(body):
        first = body[i]
        if first[0] == "word" and body[i + 1] == ("punct", "="):  # rankdir=LR;
            i += 3
        elif first in (("word", "node"), ("word", "edge")):
            i += 1
            attrs()
        elif first[0] == "id" and body[i + 1] == ("arrow", "->"):
            dst = body[i + 2]
            assert dst[0] == "id", "edge ends must be quoted ids"
            i += 3
            edges.append((first[1], dst[1], attrs()))
        else:
            assert first[0] == "id", f"node ids must be quoted: {first}"
            i += 1
            nodes.append((first[1], attrs()))
        assert body[i] == ("punct", ";"), body[i]
        i += 1
    return nodes, edges


def test_dot_has_every_node_and_edge_with_labels(pipeline: Lineage) -> None:
    graph = pipeline.graph("job", "iris")
    nodes, edges = statements(to_dot(graph))
    assert {n for n, _ in nodes} == {n.id for n in graph.nodes}
    assert len(edges) == len(graph.edges) == 6
    by_id = dict(nodes)
    assert by_id["job:uid-iris-1"]["label"] == "job\\niris"  # Graphviz's \n: kind over name
    assert by_id["job:uid-iris-1"]["penwidth"] == "2"  # the root
    assert by_id["dataset:s3://bucket/train@aaaaaaaaaaaaaaaa"]["shape"] == "cylinder"
    assert ("code:c0ffee", "job:uid-iris-1", {"label": "code_of"}) in edges
    assert to_dot(graph) == to_dot(pipeline.graph("job", "iris"))


def test_dot_quotes_awkward_names() -> None:
    awkward = ['a "quoted" name', "back\\slash", "ends with \\", "two\nlines", "brace } ; -> [x]"]
    graph = LineageGraph(
        root="job:0",
        direction="both",
        depth=None,
        nodes=[LineageNode(kinds.JOB, str(i), name) for i, name in enumerate(awkward)],
        edges=[LineageEdge("job:0", f"job:{i}", 'rel "x"') for i in range(1, len(awkward))],
    )
    nodes, edges = statements(to_dot(graph))
    labels = {node: a["label"] for node, a in nodes}
    assert labels["job:0"] == 'job\\na "quoted" name'
    assert labels["job:1"] == "job\\nback\\\\slash"  # Graphviz reads \\ in a label as one backslash
    assert labels["job:2"] == "job\\nends with \\\\ "
    assert labels["job:3"] == "job\\ntwo\\nlines"
    assert labels["job:4"] == "job\\nbrace } ; -> [x]"
    assert len(edges) == 4 and all(a["label"] == 'rel "x"' for _, _, a in edges)
    assert dot_quote("x\\") == '"x\\\\ "'


def test_json_is_sorted_stable_and_round_trips(pipeline: Lineage) -> None:
    graph = pipeline.graph("job", "iris")
    text = to_json(graph)
    data = json.loads(text)
    assert list(data) == sorted(data)
    ordered = sorted(graph.nodes, key=lambda n: (n.kind, n.name, n.key))
    assert [n["id"] for n in data["nodes"]] == [n.id for n in ordered]
    assert data["edges"] == sorted(data["edges"], key=lambda e: (e["src"], e["dst"], e["relation"]))
    assert LineageGraph.from_dict(data) == graph
    shuffled = LineageGraph.from_dict(data)
    random.Random(1).shuffle(shuffled.nodes)
    random.Random(2).shuffle(shuffled.edges)
    assert to_json(shuffled) == text


def render(renderable: object) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_tree_shows_both_directions_with_relations(pipeline: Lineage) -> None:
    text = render(to_rich(pipeline.graph("job", "iris")))
    assert text.splitlines()[0] == "job iris uid-iris-1"
    assert "upstream: what it came from" in text and "downstream: what came from it" in text
    assert "dataset s3://bucket/train @aaaaaaaaaaaaaaaa  input_of" in text
    assert "endpoint iris-prod uid-ep  deployed_to" in text
    assert text.index("run iris-run") < text.index("model_version iris/1") < text.index("endpoint iris-prod")


def test_tree_of_a_cycle_is_finite_and_says_so(lineage: Lineage) -> None:
    a, b = (kinds.PIPELINE_RUN, "a"), (kinds.PIPELINE_RUN, "b")
    lineage.link(a, b, "feeds")
    lineage.link(b, a, "feeds")
    text = render(to_rich(lineage.graph("pipeline_run", "a", direction="downstream")))
    assert "pipeline_run b  feeds" in text
    assert "pipeline_run a  feeds (shown elsewhere)" in text
    assert "upstream" not in text


def test_tree_notes_and_truncation(lineage: Lineage) -> None:
    lineage.node(kinds.JOB, "old", name="iris")
    lineage.link((kinds.JOB, "new"), (kinds.RUN, "r"), kinds.TRACKED_AS)
    lineage.node(kinds.JOB, "new", name="iris")
    text = render(to_rich(lineage.graph("job", "iris", depth=0)))
    assert "note: 2 job nodes are named 'iris'; showing the newest (key new" in text
    assert "(depth 0 reached: more lineage lies beyond; raise --depth)" in text
    assert "(nothing recorded)" in text  # nothing upstream


def test_tables_list_nodes_and_edges(pipeline: Lineage) -> None:
    graph = pipeline.graph("run", "iris-run", direction="downstream")
    rows = [line.split() for line in render(nodes_table(graph)).splitlines()]
    assert rows[0] == ["KIND", "NAME", "KEY"] and ["model_version", "iris/1", "iris/1"] in rows
    rows = [line.split() for line in render(edges_table(graph)).splitlines()]
    assert rows[0] == ["FROM", "RELATION", "TO"] and ["run:run-r1", "produced", "model_version:iris/1"] in rows
