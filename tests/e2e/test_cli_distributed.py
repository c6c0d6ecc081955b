"""Distributed jobs through the CLI: a gang that can never be scheduled is refused at apply with one
line naming instance_count and resources; bad distribution fields name the field; each worker's log
is shown apart with ``strato logs job NAME --worker K``."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.cli import ControlPlane, error_line, json_out, ok

HOSTS_SCRIPT = """\
import os
print(f"I am {os.environ['SM_CURRENT_HOST']}, rank {os.environ['STRATO_RANK']} of {os.environ['STRATO_WORLD_SIZE']}")
print("RANK set:", "RANK" in os.environ)
"""


def write_job(directory: Path, name: str, extra: str) -> Path:
    (directory / "src").mkdir(parents=True, exist_ok=True)
    (directory / "src" / "train.py").write_text(HOSTS_SCRIPT, encoding="utf-8")
    path = directory / "job.yaml"
    text = f"kind: TrainingJob\nname: {name}\ncode: ./src\ncommand: python train.py\n{extra}"
    path.write_text(text, encoding="utf-8")
    return path


def test_more_workers_than_can_ever_be_scheduled_is_refused(plane: ControlPlane, tmp_path: Path) -> None:
    cpus = os.cpu_count() or 1  # each worker alone fits the machine; two at once never can
    job_file = write_job(tmp_path, "e2e-gang-too-big", f"instance_count: 2\nresources: {{cpus: {cpus}}}\n")
    unit = "cpu" if cpus == 1 else "cpus"
    line = error_line(
        plane.cli("apply", "-f", job_file),
        f"instance_count: 2 workers of {cpus} {unit} each need {2 * cpus} cpus at once, "
        f"but the local compute backend has {cpus} {unit} in all",
        "lower instance_count or resources.cpus",
    )
    assert "job.yaml: instance_count: 2 workers" in line  # the file, then the field
    error_line(plane.cli("get", "job", "e2e-gang-too-big"), "TrainingJob 'e2e-gang-too-big' not found")


def test_bad_distribution_fields_name_the_field(plane: ControlPlane, tmp_path: Path) -> None:
    error_line(
        plane.cli("apply", "-f", write_job(tmp_path / "a", "e2e-zero", "instance_count: 0\n")),
        "instance_count",
        "greater than or equal to 1",
    )
    error_line(
        plane.cli("apply", "-f", write_job(tmp_path / "b", "e2e-mpi", "distribution: mpi\n")),
        "distribution",
        "'none' or 'torch'",
    )


def test_each_workers_log_is_shown_apart(plane: ControlPlane, tmp_path: Path) -> None:
    job_file = write_job(tmp_path, "e2e-gang", "instance_count: 2\nresources: {cpus: 0.5}\n")
    ok(plane.cli("apply", "-f", job_file))
    ok(plane.wait("e2e-gang"))
    first = ok(plane.cli("logs", "job", "e2e-gang")).stdout
    second = ok(plane.cli("logs", "job", "e2e-gang", "--worker", "1")).stdout
    assert "I am algo-1, rank 0 of 2" in first and "algo-2" not in first
    assert "I am algo-2, rank 1 of 2" in second and "algo-1" not in second
    assert "RANK set: False" in second  # distribution none: hosts and ranks, no torch variables
    error_line(
        plane.cli("logs", "job", "e2e-gang", "--worker", "2"),
        "TrainingJob 'e2e-gang' has no worker 2: it has 2 (workers 0 to 1)",
    )
    detail = ok(plane.cli("get", "job", "e2e-gang")).stdout
    assert "workers:  2 (distribution none)" in detail


def test_jobs_submit_with_workers_and_torch_distribution(plane: ControlPlane, tmp_path: Path) -> None:
    write_job(tmp_path, "unused", "")
    result = plane.cli("jobs", "submit", "src/train.py", "--name", "e2e-submit-gang", "--instance-count", "2",
                       "--distribution", "torch", "--cpus", "0.5", "--wait", "-o", "json", cwd=tmp_path)
    job = json_out(result)
    assert isinstance(job, dict) and job["status"]["state"] == "Completed"
    assert (job["spec"]["instance_count"], job["spec"]["distribution"]) == (2, "torch")
    second = ok(plane.cli("logs", "job", "e2e-submit-gang", "--worker", "1")).stdout
    assert "I am algo-2, rank 1 of 2" in second and "RANK set: True" in second
