"""Finding a lineage node and walking the graph around it: directions, depth, cycles, repeated names,
and the messages for what is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InvalidArgument, NotFound
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.lineage.model import LineageGraph
from strato.lineage.query import resolve_kind
from tests.unit.lineage.world import CODE, ENDPOINT, JOB, MODEL, OTHER, RUN, TEST, TRAIN, ids


def edge_set(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.src, e.relation, e.dst) for e in graph.edges}


def test_upstream_follows_edges_backwards(pipeline: Lineage) -> None:
    graph = pipeline.graph("model_version", "iris/1", direction="upstream")
    assert graph.root == "model_version:iris/1" and graph.direction == "upstream"
    assert {n.id for n in graph.nodes} == ids(MODEL, RUN, JOB, TRAIN, TEST, CODE)
    assert edge_set(graph) == {
        ("run:run-r1", "produced", "model_version:iris/1"),
        ("job:uid-iris-1", "tracked_as", "run:run-r1"),
        ("dataset:s3://bucket/train@aaaaaaaaaaaaaaaa", "input_of", "job:uid-iris-1"),
        ("dataset:s3://bucket/test@bbbbbbbbbbbbbbbb", "input_of", "job:uid-iris-1"),
        ("code:c0ffee", "code_of", "job:uid-iris-1"),
    }
    assert not graph.truncated and graph.notes == []


def test_downstream_follows_edges_forwards(pipeline: Lineage) -> None:
    graph = pipeline.graph("dataset", "s3://bucket/train", direction="downstream")
    assert {n.id for n in graph.nodes} == ids(TRAIN, JOB, OTHER, RUN, MODEL, ENDPOINT)
    assert len(graph.edges) == 5  # train->iris, train->other, iris->run, run->model, model->endpoint


def test_both_joins_ancestors_and_descendants_but_not_siblings(pipeline: Lineage) -> None:
    graph = pipeline.graph("job", "iris")  # both by default
    assert graph.direction == "both"
    assert {n.id for n in graph.nodes} == ids(JOB, TRAIN, TEST, CODE, RUN, MODEL, ENDPOINT)
    assert "job:uid-other" not in {n.id for n in graph.nodes}
    assert len(graph.edges) == 6
    root = graph.root_node
    assert (root.kind, root.key, root.name, root.attrs) == ("job", "uid-iris-1", "iris", {"state": "Completed"})


def test_depth_limits_hops_and_says_it_cut(pipeline: Lineage) -> None:
    one = pipeline.graph("endpoint", "iris-prod", direction="upstream", depth=1)
    assert {n.id for n in one.nodes} == ids(ENDPOINT, MODEL) and one.truncated
    assert edge_set(one) == {("model_version:iris/1", "deployed_to", "endpoint:uid-ep")}
    zero = pipeline.graph("endpoint", "iris-prod", direction="upstream", depth=0)
    assert [n.id for n in zero.nodes] == ["endpoint:uid-ep"] and zero.edges == [] and zero.truncated
    three = pipeline.graph("endpoint", "iris-prod", direction="upstream", depth=3)
    assert {n.id for n in three.nodes} == ids(ENDPOINT, MODEL, RUN, JOB) and three.truncated
    everything = pipeline.graph("endpoint", "iris-prod", direction="upstream", depth=4)
    assert len(everything.nodes) == 7 and not everything.truncated
    # Nothing further: the limit cut nothing.
    leaf = pipeline.graph("dataset", "s3://bucket/test", direction="upstream", depth=1)
    assert [n.id for n in leaf.nodes] == ["dataset:s3://bucket/test@bbbbbbbbbbbbbbbb"] and not leaf.truncated


def test_cycles_end_the_walk_and_keep_the_closing_edge(lineage: Lineage) -> None:
    a, b, c = (kinds.PIPELINE_RUN, "a"), (kinds.PIPELINE_RUN, "b"), (kinds.PIPELINE_RUN, "c")
    lineage.link(a, b, "feeds")
    lineage.link(b, c, "feeds")
    lineage.link(c, a, "feeds")
    lineage.link(b, b, "retries")  # a self-loop
    for direction in ("upstream", "downstream", "both"):
        graph = lineage.graph("pipeline_run", "a", direction=direction)
        assert {n.key for n in graph.nodes} == {"a", "b", "c"}
        assert edge_set(graph) == {
            ("pipeline_run:a", "feeds", "pipeline_run:b"),
            ("pipeline_run:b", "feeds", "pipeline_run:c"),
            ("pipeline_run:c", "feeds", "pipeline_run:a"),
            ("pipeline_run:b", "retries", "pipeline_run:b"),
        }
        assert not graph.truncated


def test_a_key_finds_its_node_and_a_repeated_name_the_newest(lineage: Lineage) -> None:
    lineage.node(kinds.JOB, "uid-old", name="iris")
    lineage.node(kinds.JOB, "uid-new", name="iris")  # deleted and created again: a new uid
    node, notes = lineage.find("job", "iris")
    assert node.key == "uid-new"
    assert len(notes) == 1
    assert "2 job nodes are named 'iris'; showing the newest (key uid-new, recorded 20" in notes[0]
    assert lineage.graph("job", "iris").notes == notes
    node, notes = lineage.find("job", "uid-old")
    assert node.key == "uid-old" and notes == []


def test_kind_spellings_resolve() -> None:
    assert resolve_kind("jobs") == "job"
    assert resolve_kind("TrainingJob") == "job"
    assert resolve_kind("tuning-job") == "tuning_job"
    assert resolve_kind("model-version") == "model_version"
    assert resolve_kind("model_versions") == "model_version"
    assert resolve_kind("Dataset") == "dataset"
    assert resolve_kind("code") == "code"


def test_unknown_kind_names_the_kinds_and_the_closest(pipeline: Lineage) -> None:
    with pytest.raises(InvalidArgument) as info:
        pipeline.graph("jbo", "iris")
    assert info.value.message == (
        "unknown lineage kind 'jbo'; did you mean 'job'? (kinds: batch_transform, code, dataset, endpoint, "
        "feature_view, job, model_version, pipeline_run, run, tuning_job)"
    )


def test_unknown_node_suggests_names_of_its_kind(pipeline: Lineage) -> None:
    with pytest.raises(NotFound) as info:
        pipeline.graph("job", "irsi")
    message = info.value.message
    assert message.startswith("no job named 'irsi' in the lineage; did you mean 'iris'?")
    assert "(kinds: batch_transform, code, dataset, endpoint," in message
    assert info.value.details["suggestions"][0] == "iris"


def test_unknown_node_says_where_the_name_is_recorded(pipeline: Lineage) -> None:
    with pytest.raises(NotFound, match=r"no job named 's3://bucket/train' in the lineage; .*recorded as: dataset"):
        pipeline.graph("job", "s3://bucket/train")


def test_unknown_node_of_a_kind_with_nothing_recorded(lineage: Lineage) -> None:
    with pytest.raises(NotFound) as info:
        lineage.find("endpoint", "prod")
    assert info.value.message.startswith("no endpoint named 'prod' in the lineage (none of kind endpoint is recorded")


def test_bad_direction_and_depth(pipeline: Lineage) -> None:
    with pytest.raises(InvalidArgument, match="unknown lineage direction 'sideways'"):
        pipeline.graph("job", "iris", direction="sideways")
    with pytest.raises(InvalidArgument, match="depth must be 0 or more"):
        pipeline.graph("job", "iris", depth=-1)


def test_dataset_is_recorded_with_its_fingerprint(lineage: Lineage, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part-0.csv").write_text("x,y\n1,2\n")
    ref = lineage.dataset(str(tmp_path / "data"), channel="train")
    lineage.link(ref, (kinds.JOB, "uid-1"), kinds.INPUT_OF)
    node, _ = lineage.find("dataset", str(tmp_path / "data"))
    assert node.key == ref[1] and node.key.startswith(f"{tmp_path / 'data'}@") and len(node.key.split("@")[-1]) == 16
    assert node.attrs["channel"] == "train" and node.key.endswith(node.attrs["fingerprint"][:16])
    assert lineage.dataset(str(tmp_path / "data")) == ref  # same content: the same node
    (tmp_path / "data" / "part-0.csv").write_text("x,y\n1,3\n")
    assert lineage.dataset(str(tmp_path / "data")) != ref
    node, notes = lineage.find("dataset", str(tmp_path / "data"))  # the newest content wins
    assert node.key != ref[1] and "2 dataset nodes are named" in notes[0]
