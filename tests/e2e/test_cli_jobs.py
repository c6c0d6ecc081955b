"""The training job workflow through the CLI, as a user runs it: apply, wait, get, logs, jobs submit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import (
    ControlPlane,
    file_uri_path,
    json_out,
    ok,
    printed,
    run_cli,
    write_data,
    write_train_script,
)


def test_apply_wait_get_and_logs(plane: ControlPlane, tmp_path: Path) -> None:
    write_train_script(tmp_path / "src")
    write_data(tmp_path / "data")
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        "kind: TrainingJob\n"
        "name: e2e-happy\n"
        "code: ./src\n"
        "command: python train.py\n"
        "hyperparameters: {epochs: 2}\n"
        "inputs: {train: ./data}\n"
        "metric_definitions:\n"
        "  - {name: train:loss, regex: 'loss=([0-9.]+)'}\n",
        encoding="utf-8",
    )

    applied = ok(plane.cli("apply", "-f", job_file))
    assert "TrainingJob e2e-happy applied" in applied.stdout

    waited = ok(plane.wait("e2e-happy"))
    assert "Completed" in waited.stdout

    job = plane.job("e2e-happy")
    assert job["kind"] == "TrainingJob"
    assert job["name"] == "e2e-happy"
    assert job["spec"]["hyperparameters"] == {"epochs": 2}
    assert job["spec"]["command"] == "python train.py"
    status = job["status"]
    assert status["state"] == "Completed", status
    assert status["metrics"] == {"train:loss": 0.5}
    model_dir = file_uri_path(status["model_uri"])
    assert (model_dir / "model.txt").read_text() == "trained"

    listed = json_out(plane.cli("get", "jobs", "-o", "json"))
    assert isinstance(listed, list)
    mine = [item for item in listed if item["name"] == "e2e-happy"]
    assert len(mine) == 1 and mine[0]["status"]["state"] == "Completed"
    table = ok(plane.cli("get", "jobs")).stdout
    assert "e2e-happy" in table and "Completed" in table

    log = ok(plane.cli("logs", "job", "e2e-happy")).stdout
    assert "loss=0.5" in log
    assert printed(log, "ARGS") == ["--epochs", "2"]
    assert printed(log, "CHANNEL_FILES") == ["part-0.csv"]

    again = ok(plane.cli("apply", "-f", job_file))  # apply is idempotent: the same spec again is fine
    assert "TrainingJob e2e-happy applied" in again.stdout
    assert plane.job("e2e-happy")["uid"] == job["uid"]


def test_jobs_submit_passes_hyperparameters_and_inputs(plane: ControlPlane, tmp_path: Path) -> None:
    write_train_script(tmp_path / "src")
    write_data(tmp_path / "data", "train.csv")

    result = plane.cli("jobs", "submit", "src/train.py", "--hp", "epochs=3", "--input", "train=data",
                       "--metric", "loss=loss=([0-9.]+)", "--wait", "-o", "json", cwd=tmp_path)
    job = json_out(result)
    assert isinstance(job, dict)
    assert job["kind"] == "TrainingJob"
    assert job["name"].startswith("train-")
    assert job["status"]["state"] == "Completed", job["status"]
    assert job["spec"]["hyperparameters"] == {"epochs": 3}
    assert job["status"]["metrics"] == {"loss": 0.5}

    log = ok(plane.cli("logs", "job", job["name"])).stdout
    assert printed(log, "ARGS") == ["--epochs", "3"]
    assert printed(log, "HPS") == {"epochs": 3}
    assert printed(log, "CHANNEL_FILES") == ["train.csv"]


COMMANDS = [["up"], ["down"], ["status"], ["server"], ["apply"], ["get"], ["delete"], ["logs"], ["wait"],
            ["stop"], ["jobs"], ["jobs", "submit"], ["jobs", "interrupt"], ["jobs", "watch"], ["version"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = ok(run_cli(*command, "--help"))
    assert "Usage:" in result.stdout
    assert result.stderr == ""


def test_top_level_help_lists_the_commands() -> None:
    text = ok(run_cli("--help")).stdout
    for command in ("up", "down", "status", "apply", "get", "delete", "logs", "wait", "stop", "jobs", "version"):
        assert f" {command} " in text, command
