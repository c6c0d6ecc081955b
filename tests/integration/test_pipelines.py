"""Pipelines on a real control plane: steps run as jobs with outputs passed by reference, a condition
picks a branch, a rerun is served from the cache (and says why), a changed parameter or a deleted cached
artifact re-runs what it must, a failing step is retried then fails the run with its reason, and broken
pipelines are refused before anything runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.client import Client
from strato.config import Settings
from strato.errors import StratoError
from strato.specs import load_yaml_text
from tests.integration.conftest import control_plane

CODE = {
    "prepare.py": (
        "import os\nout = os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'data')\nos.makedirs(out, exist_ok=True)\n"
        "open(os.path.join(out, 'rows.txt'), 'w').write('\\n'.join(str(i) for i in range(10)))\nprint('prepared')\n"
    ),
    "train.py": (
        "import argparse, os\np = argparse.ArgumentParser(); p.add_argument('--quality', type=float)\n"
        "a, _ = p.parse_known_args()\n"
        "rows = open(os.path.join(os.environ['SM_CHANNEL_TRAIN'], 'rows.txt')).read().split()\n"
        "print(f'rows={len(rows)}')\nprint(f'accuracy: {a.quality}')\n"
    ),
    "report.py": "print('reported')\n",
    "flaky.py": "import sys\nprint('failing on purpose', file=sys.stderr)\nsys.exit(3)\n",
}

PIPELINE = """
kind: Pipeline
name: flow
parameters:
  quality: {type: float, default: 0.95}
  threshold: {type: float, default: 0.9}
steps:
  - name: prepare
    type: processing
    code: ./code
    command: python prepare.py
    outputs: [data]
  - name: train
    type: training
    job:
      code: ./code
      command: python train.py
      metric_definitions: [{name: accuracy, regex: "accuracy: ([0-9.]+)"}]
    inputs: {train: "{{ steps.prepare.outputs.data }}"}
    hyperparameters: {quality: "{{ parameters.quality }}"}
  - name: gate
    type: condition
    if: "steps.train.metrics['accuracy'] >= parameters.threshold"
    then: [report]
    else: [stop]
  - name: report
    type: processing
    code: ./code
    command: python report.py
  - name: stop
    type: fail
    message: "accuracy {{ steps.train.metrics['accuracy'] }} is under {{ parameters.threshold }}"
"""


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Client, Path]]:
    root = tmp_path_factory.mktemp("pipelines")
    (root / "code").mkdir()
    for name, text in CODE.items():
        (root / "code" / name).write_text(text)
    (root / "flow.yaml").write_text(PIPELINE)
    with control_plane(root / "home") as (settings, client):
        client.apply(load_yaml_text(PIPELINE)[0], base_dir=root)
        yield settings, client, root


def run(client: Client, name: str, **parameters: Any) -> dict[str, Any]:
    client.pipelines.run("flow", parameters, name=name)
    return client.pipelines.wait(name, timeout=300)


def states(run_: dict[str, Any]) -> dict[str, str]:
    return {name: step["state"] for name, step in run_["status"]["steps"].items()}


def test_a_run_passes_outputs_and_takes_a_branch(plane: tuple[Settings, Client, Path]) -> None:
    _, client, _ = plane
    first = run(client, "first")
    assert first["status"]["state"] == "Succeeded", first["status"]
    assert states(first) == {"prepare": "Succeeded", "train": "Succeeded", "gate": "Succeeded",
                             "report": "Succeeded", "stop": "Skipped"}  # fmt: skip
    train = client.jobs.get(first["status"]["steps"]["train"]["job"])
    assert "rows=10" in "".join(train.logs())  # the prepared output arrived as the training channel
    assert first["status"]["steps"]["train"]["metrics"] == {"accuracy": 0.95}
    graph = client.lineage.get("pipeline_run", "first", direction="upstream")
    assert {"first-prepare", "first-train", "first-report"} <= {node.name for node in graph.nodes}


def test_rerun_is_cached_and_says_why_until_something_changes(plane: tuple[Settings, Client, Path]) -> None:
    settings, client, root = plane
    run(client, "warm")
    again = run(client, "cached")
    assert states(again)["prepare"] == states(again)["train"] == states(again)["report"] == "Cached"
    assert "reused the result of run" in again["status"]["steps"]["train"]["cache"]["reason"]
    # Re-applying the same pipeline keeps the cache; a new parameter value re-runs train and what follows.
    client.apply(load_yaml_text(PIPELINE)[0], base_dir=root)
    changed = run(client, "changed", quality=0.97)
    assert states(changed)["prepare"] == "Cached" and states(changed)["train"] == "Succeeded"
    assert changed["status"]["steps"]["train"]["cache"]["reason"].startswith("no earlier run")
    # A cached artifact deleted behind the cache's back: the step runs again and says why.
    data = changed["status"]["steps"]["prepare"]["outputs"]["data"].removeprefix("strato://")
    shutil.rmtree(Path(settings.resolved_artifact_url) / data)
    rerun = run(client, "after-delete", quality=0.97)
    assert states(rerun)["prepare"] == "Succeeded"
    assert "no longer exists" in rerun["status"]["steps"]["prepare"]["cache"]["reason"]


def test_the_else_branch_fails_the_run_with_its_message(plane: tuple[Settings, Client, Path]) -> None:
    _, client, _ = plane
    low = run(client, "low", quality=0.5)
    assert low["status"]["state"] == "Failed"
    assert states(low)["report"] == "Skipped" and states(low)["stop"] == "Failed"
    assert low["status"]["message"] == "accuracy 0.5 is under 0.9"


def test_a_failed_run_resumes_from_its_failed_steps(plane: tuple[Settings, Client, Path]) -> None:
    _, client, root = plane
    marker = root / "code" / "fixed"
    (root / "code" / "fragile.py").write_text(
        f"import os, sys\nsys.exit(0 if os.path.exists({str(marker)!r}) else 4)\n"
    )
    fragile = load_yaml_text(
        "kind: Pipeline\nname: fragile\nsteps:\n"
        "  - {name: one, type: processing, code: ./code, command: python report.py}\n"
        "  - {name: two, type: processing, code: ./code, command: python fragile.py, after: [one]}\n"
    )[0]
    client.apply(fragile, base_dir=root)
    client.pipelines.run("fragile", name="fragile-1", no_cache=True)
    failed = client.pipelines.wait("fragile-1", timeout=300)
    assert states(failed) == {"one": "Succeeded", "two": "Failed"}
    marker.touch()  # the problem is fixed outside the pipeline
    resumed = client.pipelines.resume("fragile-1", name="fragile-2")
    done = client.pipelines.wait(resumed["name"], timeout=300)
    assert states(done) == {"one": "Cached", "two": "Succeeded"}
    assert done["status"]["steps"]["one"]["cache"]["reason"] == "reused from run 'fragile-1' (resumed)"
    with pytest.raises(StratoError, match="run 'fragile-2' is Succeeded; only a failed or stopped run resumes"):
        client.pipelines.resume("fragile-2", name="fragile-3")


def test_a_step_that_fails_every_retry_fails_the_run(plane: tuple[Settings, Client, Path]) -> None:
    _, client, root = plane
    flaky = load_yaml_text(
        "kind: Pipeline\nname: flaky\nsteps:\n  - name: boom\n    type: processing\n    code: ./code\n"
        "    command: python flaky.py\n    retry: {attempts: 2, backoff: 0s, on: [user]}\n"
        "  - name: after\n    type: processing\n    code: ./code\n    command: python report.py\n    after: [boom]\n"
    )[0]
    client.apply(flaky, base_dir=root)
    client.pipelines.run("flaky", name="flaky-1")
    done = client.pipelines.wait("flaky-1", timeout=300)
    assert done["status"]["state"] == "Failed"
    boom = done["status"]["steps"]["boom"]
    assert boom["attempt"] == 2 and "failed after 2 attempts" in boom["message"]
    assert states(done)["after"] == "Skipped"


def test_on_failure_continue_lets_independent_branches_finish(plane: tuple[Settings, Client, Path]) -> None:
    _, client, root = plane
    spec = load_yaml_text(
        "kind: Pipeline\nname: branches\non_failure: continue\nsteps:\n"
        "  - {name: bad, type: processing, code: ./code, command: python flaky.py}\n"
        "  - {name: after-bad, type: processing, code: ./code, command: python report.py, after: [bad]}\n"
        "  - {name: good, type: processing, code: ./code, command: python report.py}\n"
    )[0]
    client.apply(spec, base_dir=root)
    client.pipelines.run("branches", name="branches-1", no_cache=True)
    done = client.pipelines.wait("branches-1", timeout=300)
    assert done["status"]["state"] == "Failed"
    assert states(done) == {"bad": "Failed", "after-bad": "Skipped", "good": "Succeeded"}


def test_broken_pipelines_and_parameters_are_refused(plane: tuple[Settings, Client, Path]) -> None:
    _, client, root = plane
    cycle = load_yaml_text(
        "kind: Pipeline\nname: loop\nsteps:\n"
        "  - {name: a, type: processing, command: 'true', after: [c]}\n"
        "  - {name: b, type: processing, command: 'true', after: [a]}\n"
        "  - {name: c, type: processing, command: 'true', after: [b]}\n"
    )[0]
    with pytest.raises(StratoError, match="the steps form a cycle: a -> b -> c -> a"):
        client.apply(cycle, base_dir=root)
    with pytest.raises(StratoError, match="quality"):
        client.pipelines.run("flow", {"quality": "high"}, name="bad-type")
    with pytest.raises(StratoError, match="no_such"):
        client.pipelines.run("flow", {"no_such": 1}, name="bad-name")


def test_killed_control_plane_mid_run_resumes_without_running_a_step_twice(tmp_path: Path) -> None:
    """The first step waits for a file; the control plane is SIGKILLed while it runs and started again."""
    import os
    import signal

    import psutil

    from strato.server import daemon
    from tests.helpers import wait_until

    (tmp_path / "code").mkdir()
    release = tmp_path / "release"
    (tmp_path / "code" / "wait.py").write_text(
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.05)\nprint('released')\n"
    )
    (tmp_path / "code" / "report.py").write_text(CODE["report.py"])
    spec = load_yaml_text(
        "kind: Pipeline\nname: slow\nsteps:\n"
        "  - {name: first, type: processing, code: ./code, command: python wait.py}\n"
        "  - {name: second, type: processing, code: ./code, command: python report.py, after: [first]}\n"
    )[0]
    home = tmp_path / "home"
    with control_plane(home) as (settings, client):
        client.apply(spec, base_dir=tmp_path)
        client.pipelines.run("slow", name="slow-1")
        wait_until(lambda: client.pipelines.get("slow-1")["status"].get("steps", {}).get("first", {}).get("state")
                   == "Running", 60, what="the first step running")  # fmt: skip
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
    with control_plane(home) as (_, client):
        release.touch()
        done = client.pipelines.wait("slow-1", timeout=120)
        assert done["status"]["state"] == "Succeeded", done["status"]
        jobs = sorted(job.name for job in client.jobs.list())
        assert jobs == ["slow-1-first", "slow-1-second"]  # each step's job exactly once
        assert client.jobs.get("slow-1-first").data["status"]["attempt"] == 1
