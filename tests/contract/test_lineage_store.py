"""Lineage recording and queries behave the same on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.errors import NotFound
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import lineage_edges, lineage_nodes
from tests.unit.lineage.world import CODE, ENDPOINT, JOB, MODEL, RUN, TEST, TRAIN, ids, record_pipeline, ticking_clock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def lineage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lineage]:
    url = f"sqlite:///{tmp_path / 'meta.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = MetadataStore(url, clock=ticking_clock())
    if request.param == "postgres":  # one database per session: start each test empty
        with store.writing() as conn:
            conn.execute(lineage_edges.delete())
            conn.execute(lineage_nodes.delete())
    yield Lineage(store)
    store.close()


def test_graph_walks(lineage: Lineage) -> None:
    record_pipeline(lineage)
    record_pipeline(lineage)  # recording twice stores once
    up = lineage.graph("model_version", "iris/1", direction="upstream")
    assert {n.id for n in up.nodes} == ids(MODEL, RUN, JOB, TRAIN, TEST, CODE) and len(up.edges) == 5
    down = lineage.graph("job", "iris", direction="downstream", depth=2)
    assert {n.id for n in down.nodes} == ids(JOB, RUN, MODEL) and down.truncated
    both = lineage.graph("run", "iris-run")
    assert {n.id for n in both.nodes} == ids(RUN, JOB, TRAIN, TEST, CODE, MODEL, ENDPOINT) and len(both.edges) == 6
    assert both.node("dataset:s3://bucket/train@aaaaaaaaaaaaaaaa").attrs == {"fingerprint": "aaaa"}


def test_attrs_merge_and_names_resolve_to_the_newest(lineage: Lineage) -> None:
    first = lineage.node(kinds.JOB, "uid-1", name="iris", attrs_a=1)
    assert lineage.node(kinds.JOB, "uid-1", nested={"x": [1, 2]}) == first
    lineage.node(kinds.JOB, "uid-2", name="iris")
    node, notes = lineage.find("job", "iris")
    assert node.key == "uid-2" and "2 job nodes are named 'iris'" in notes[0]
    node, notes = lineage.find("job", "uid-1")
    assert node.attrs == {"attrs_a": 1, "nested": {"x": [1, 2]}} and node.name == "iris" and notes == []
    with pytest.raises(NotFound, match=re.escape("no job named 'irs' in the lineage; did you mean 'iris'?")):
        lineage.find("job", "irs")


def test_a_cycle_ends(lineage: Lineage) -> None:
    a, b = (kinds.PIPELINE_RUN, "a"), (kinds.PIPELINE_RUN, "b")
    lineage.link(a, b, "feeds")
    lineage.link(b, a, "feeds")
    graph = lineage.graph("pipeline_run", "b")
    assert {n.key for n in graph.nodes} == {"a", "b"} and len(graph.edges) == 2


def test_racing_recorders_store_one_node_and_edge(lineage: Lineage) -> None:
    errors: list[BaseException] = []

    def record() -> None:
        try:
            for _ in range(5):
                lineage.link((kinds.JOB, "uid-race"), (kinds.RUN, "run-race"), kinds.TRACKED_AS)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    graph = lineage.graph("job", "uid-race")
    assert len(graph.nodes) == 2 and len(graph.edges) == 1
