"""Pipelines from the CLI: apply a YAML pipeline, run it with a parameter and follow it, see the DAG with
its step states (and as Graphviz dot), and a rerun served from the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.cli import ControlPlane, error_line, json_out, ok
from tests.integration.test_pipelines import CODE, PIPELINE


def test_pipelines_from_the_cli(tmp_path: Path, own_plane: Callable[..., ControlPlane]) -> None:
    plane = own_plane(tmp_path / "home")
    (tmp_path / "code").mkdir()
    for name, text in CODE.items():
        (tmp_path / "code" / name).write_text(text)
    (tmp_path / "flow.yaml").write_text(PIPELINE)
    assert "Pipeline flow applied" in ok(plane.cli("apply", "-f", tmp_path / "flow.yaml")).stdout

    shown = ok(plane.cli("pipelines", "run", "flow", "-p", "quality=0.96", "--name", "one", "--wait")).stdout
    assert "PipelineRun one of flow (revision 1): Succeeded" in shown
    for step in ("prepare", "train", "gate", "report", "stop"):
        assert step in shown
    dot = ok(plane.cli("get", "pipelinerun", "one", "-o", "dot")).stdout
    assert dot.startswith('digraph "flow"') and '"prepare" -> "train";' in dot
    assert '"gate" -> "report" [style=dashed, label=true];' in dot and "Succeeded" in dot

    again = json_out(plane.cli("pipelines", "run", "flow", "-p", "quality=0.96", "--name", "two", "--wait",
                               "-o", "json"))  # fmt: skip
    steps = again["status"]["steps"]  # type: ignore[index]
    assert steps["train"]["state"] == "Cached" and steps["prepare"]["state"] == "Cached"
    listed = ok(plane.cli("get", "pipelineruns")).stdout
    assert "one" in listed and "two" in listed

    failed = plane.cli("pipelines", "run", "flow", "-p", "quality=0.2", "--name", "three", "--wait")
    assert failed.returncode == 1 and "accuracy 0.2 is under 0.9" in failed.stdout
    error_line(plane.cli("pipelines", "run", "flow", "-p", "quality=high"), "quality")
    error_line(plane.cli("pipelines", "run", "nope"), "nope")
