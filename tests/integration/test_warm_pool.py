"""Warm pools for real: the first job starts cold and leaves a pool process behind; the next starts as
its forked child with the imports done, and still behaves as ``python script.py`` started by the runner
would (its own argv, environment, working directory, exit code, traceback, stop and kill)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from strato.client import Client
from strato.config import Settings
from strato.specs import TrainingJob
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

PROBE = """\
import sys
PRELOADED = "email.mime.text" in sys.modules  # true only when a pool imported it before us
import email.mime.text
import json, os, pathlib, time
from strato import runtime

print("probe " + json.dumps({
    "preloaded": PRELOADED, "argv": sys.argv, "cwd": os.getcwd(), "pid": os.getpid(),
    "job": os.environ.get("STRATO_JOB_NAME"), "main": __name__, "file": __file__,
}), flush=True)
mode = runtime.hyperparameters().get("mode", "ok")
runtime.report(step=1, score=2.5)
(runtime.model_dir() / "model.txt").write_text("trained")
if mode == "fail":
    sys.exit(3)
if mode == "raise":
    raise ValueError("bad hyperparameter")
if mode == "wait":
    runtime.on_interruption(lambda: print("saving before the stop", flush=True))
    while True:
        time.sleep(0.05)
"""


@pytest.fixture
def warm_platform(tmp_path: Path, warm_dir: Path) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path / "home") as running:
        yield running


def probe_job(tmp_path: Path, name: str, mode: str = "ok") -> TrainingJob:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "probe.py").write_text(PROBE)
    return TrainingJob(
        name=name, code=str(code), command="python probe.py", hyperparameters={"mode": mode},
        warm_pool={"keep_alive": 60},
    )  # fmt: skip


def probe_output(client: Client, name: str) -> dict:
    line = next(line for line in "".join(client.jobs.logs(name)).splitlines() if line.startswith("probe "))
    return dict(json.loads(line[len("probe ") :]))


def run_warm_once(client: Client, tmp_path: Path, warm_dir: Path) -> None:
    """The first job on a fresh machine: cold, and it leaves a pool behind."""
    first = client.jobs.wait(client.jobs.submit(probe_job(tmp_path, "first")).name, timeout=60)
    assert first.status == "Completed", first.message
    assert "warm pool: none ready" in "".join(client.jobs.logs("first"))
    assert probe_output(client, "first")["preloaded"] is False
    wait_until(lambda: list(warm_dir.glob("*.sock")), 30, what="the warm pool's socket")


def test_next_job_starts_warm_as_its_own_script(
    warm_platform: tuple[Settings, Client], tmp_path: Path, warm_dir: Path
) -> None:
    _, client = warm_platform
    run_warm_once(client, tmp_path, warm_dir)

    job = client.jobs.wait(client.jobs.submit(probe_job(tmp_path, "second")).name, timeout=60)
    assert job.status == "Completed", job.message
    logs = "".join(client.jobs.logs("second"))
    assert "the code started in a warm process" in logs
    probe = probe_output(client, "second")
    assert probe["preloaded"] is True  # the import was done before the script started
    assert probe["argv"] == ["probe.py", "--mode", "ok"]
    assert probe["job"] == "second" and probe["main"] == "__main__" and probe["file"] == "probe.py"
    assert Path(probe["cwd"]).name == "code" and probe["cwd"] != probe_output(client, "first")["cwd"]
    assert job.metrics["score"] == 2.5
    assert "uploaded model" in logs


def test_warm_code_failure_and_traceback_are_the_jobs(
    warm_platform: tuple[Settings, Client], tmp_path: Path, warm_dir: Path
) -> None:
    _, client = warm_platform
    run_warm_once(client, tmp_path, warm_dir)

    failed = client.jobs.wait(client.jobs.submit(probe_job(tmp_path, "exits-3", "fail")).name, timeout=60)
    assert failed.status == "Failed" and "exit code 3" in failed.message
    raised = client.jobs.wait(client.jobs.submit(probe_job(tmp_path, "raises", "raise")).name, timeout=60)
    assert raised.status == "Failed" and "exit code 1" in raised.message
    logs = "".join(client.jobs.logs("raises"))
    assert "ValueError: bad hyperparameter" in logs and "Traceback" in logs
    assert probe_output(client, "raises")["preloaded"] is True


def test_stop_reaches_warm_code_and_a_killed_task_takes_it_down(
    warm_platform: tuple[Settings, Client], tmp_path: Path, warm_dir: Path
) -> None:
    settings, client = warm_platform
    run_warm_once(client, tmp_path, warm_dir)

    client.jobs.submit(probe_job(tmp_path, "stopped", "wait"))
    wait_until(lambda: "probe " in "".join(client.jobs.logs("stopped")), 60, what="the probe started")
    client.jobs.stop("stopped")
    job = client.jobs.wait("stopped", timeout=60)
    assert job.status == "Stopped", job.message
    assert "saving before the stop" in "".join(client.jobs.logs("stopped"))  # its SIGTERM handler ran
    assert not psutil.pid_exists(probe_output(client, "stopped")["pid"])

    # A task killed outright (a machine's OOM killer, a crashed shim): the warm child must not outlive it.
    client.jobs.submit(probe_job(tmp_path, "killed", "wait"))
    wait_until(lambda: "probe " in "".join(client.jobs.logs("killed")), 60, what="the probe started")
    pid = probe_output(client, "killed")["pid"]
    task = settings.home / "runs" / client.jobs.get("killed").data["status"]["task_id"]
    os.killpg(json.loads((task / "pid.json").read_text())["pid"], signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pid), 30, what="the warm child to end with its task")
