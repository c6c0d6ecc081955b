"""What a user sees when something is wrong: bad YAML, bad specs, failing or runaway code, a server
that is not there. Every case checks the one-line message, not only the exit code."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.cli import (
    ControlPlane,
    error_line,
    file_uri_path,
    ok,
    printed,
    run_cli,
    write_data,
    write_train_script,
)

BASE = "kind: TrainingJob\nname: {name}\ncode: ./src\ncommand: python train.py\n"


def write_job(directory: Path, text: str, name: str = "job.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# (test id, the YAML after the code directory exists, fragments the error line must hold)
SPEC_ERRORS = [
    ("malformed-yaml",
     "kind: TrainingJob\nname: bad-yaml\ncode: ./src\ncommand: [python, train.py\nmax_runtime: 1h\n",
     ["job.yaml", "line 5", "malformed YAML"]),
    ("unknown-field",
     "kind: TrainingJob\nname: bad-field\ncode: ./src\ncomand: python train.py\n",
     ["job.yaml", "comand: unknown field", "did you mean 'command'?"]),
    ("unknown-nested-field",
     BASE.format(name="bad-nested") + "resources: {cpus: 1, memroy: 1Gi}\n",
     ["job.yaml", "resources.memroy: unknown field", "did you mean 'memory'?"]),
    ("missing-code-directory",
     "kind: TrainingJob\nname: bad-code\ncode: ./nope\ncommand: python train.py\n",
     ["code: directory './nope' does not exist"]),
    ("no-command-or-entrypoint",
     "kind: TrainingJob\nname: bad-command\ncode: ./src\n",
     ["job.yaml", "give either command", "entrypoint"]),
    ("missing-input-path",
     BASE.format(name="bad-input") + "inputs: {train: ./missing}\n",
     ["inputs.train", "'./missing' does not exist"]),
    ("negative-cpus",
     BASE.format(name="bad-cpus") + "resources: {cpus: -1}\n",
     ["job.yaml", "resources.cpus", "greater than 0"]),
    ("zero-cpus",
     BASE.format(name="bad-cpus") + "resources: {cpus: 0}\n",
     ["job.yaml", "resources.cpus", "greater than 0"]),
    ("name-with-spaces",
     BASE.format(name="my job"),
     ["job.yaml", "name 'my job' is not valid", "1-63 letters, digits, '-', '_' or '.'"]),
]


@pytest.mark.parametrize(("text", "fragments"), [case[1:] for case in SPEC_ERRORS],
                         ids=[case[0] for case in SPEC_ERRORS])
def test_bad_spec_is_rejected_with_its_reason(plane: ControlPlane, tmp_path: Path, text: str,
                                              fragments: list[str]) -> None:
    write_train_script(tmp_path / "src")
    job_file = write_job(tmp_path, text)
    result = plane.cli("apply", "-f", job_file)
    error_line(result, *fragments)
    assert result.stdout == ""


def test_request_larger_than_the_machine_is_rejected(plane: ControlPlane, tmp_path: Path) -> None:
    write_train_script(tmp_path / "src")
    job_file = write_job(tmp_path, BASE.format(name="too-big") + "resources: {cpus: 512}\n")
    error_line(plane.cli("apply", "-f", job_file),
               "resources.cpus", "asks for 512", f"has {os.cpu_count()} in all")
    error_line(plane.cli("get", "job", "too-big"), "TrainingJob 'too-big' not found")


def test_missing_job_file(plane: ControlPlane, tmp_path: Path) -> None:
    error_line(plane.cli("apply", "-f", tmp_path / "absent.yaml"), "absent.yaml", "file not found")


def test_same_name_with_a_different_spec_is_refused(plane: ControlPlane, tmp_path: Path) -> None:
    write_train_script(tmp_path / "src")
    job_file = write_job(tmp_path, BASE.format(name="e2e-dup") + "hyperparameters: {epochs: 1}\n")
    ok(plane.cli("apply", "-f", job_file))
    ok(plane.wait("e2e-dup"))

    write_job(tmp_path, BASE.format(name="e2e-dup") + "hyperparameters: {epochs: 2}\n")
    error_line(plane.cli("apply", "-f", job_file), "TrainingJob 'e2e-dup' already exists", "different spec")
    assert plane.job("e2e-dup")["spec"]["hyperparameters"] == {"epochs": 1}


def test_unicode_and_spaces_in_code_and_input_paths(plane: ControlPlane, tmp_path: Path) -> None:
    write_train_script(tmp_path / "my código dir")
    write_data(tmp_path / "dätä dir", "über daten.csv")
    job_file = write_job(
        tmp_path / "spëc dir",
        "kind: TrainingJob\nname: e2e-unicode\ncode: '../my código dir'\ncommand: python train.py\n"
        "inputs: {train: '../dätä dir'}\n")
    ok(plane.cli("apply", "-f", job_file))
    ok(plane.wait("e2e-unicode"))
    status = plane.job("e2e-unicode")["status"]
    assert status["state"] == "Completed", status
    assert (file_uri_path(status["model_uri"]) / "model.txt").read_text() == "trained"
    log = ok(plane.cli("logs", "job", "e2e-unicode")).stdout
    assert printed(log, "CHANNEL_FILES") == ["über daten.csv"]


def test_crashing_user_code_fails_the_job_with_the_exception(plane: ControlPlane, tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text('print("about to fail")\nraise ValueError("bad learning rate -3")\n')
    ok(plane.cli("apply", "-f", write_job(tmp_path, BASE.format(name="e2e-crash"))))

    waited = plane.wait("e2e-crash")
    assert waited.returncode == 1, waited.stderr
    assert "Failed" in waited.stdout

    status = plane.job("e2e-crash")["status"]
    assert status["state"] == "Failed"
    assert status["exit_code"] == 1
    assert "exit code 1" in status["message"]
    assert "ValueError: bad learning rate -3" in status["message"]
    log = ok(plane.cli("logs", "job", "e2e-crash")).stdout
    assert "about to fail" in log and "Traceback" in log


@pytest.mark.slow
def test_code_running_past_max_runtime_is_stopped(plane: ControlPlane, tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    # Sleeps far longer than max_runtime but not forever, so a broken stop cannot leave it behind for long.
    (code / "train.py").write_text('import time\nprint("training forever", flush=True)\ntime.sleep(120)\n')
    ok(plane.cli("apply", "-f", write_job(tmp_path, BASE.format(name="e2e-hang") + "max_runtime: 2s\n")))

    waited = plane.wait("e2e-hang")
    assert waited.returncode == 1, waited.stderr
    status = plane.job("e2e-hang")["status"]
    assert status["state"] == "Stopped", status
    assert "max_runtime" in status["message"]
    assert "training forever" in ok(plane.cli("logs", "job", "e2e-hang")).stdout


LOUD_SCRIPT = """\
import sys

line = b"x" * 99 + b"\\n"
block = line * 10_000  # 1 MB
for _ in range(30):
    sys.stdout.buffer.write(block)
sys.stdout.buffer.flush()
print("the last line", flush=True)
"""


@pytest.mark.slow
def test_huge_log_is_capped_with_a_notice(own_plane: Callable[..., ControlPlane], tmp_path: Path) -> None:
    cap = 1024 * 1024
    plane = own_plane(tmp_path / "home", STRATO_LOG_MAX_BYTES=str(cap))
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text(LOUD_SCRIPT)
    ok(plane.cli("apply", "-f", write_job(tmp_path, BASE.format(name="e2e-loud"))))

    ok(plane.wait("e2e-loud"))
    status = plane.job("e2e-loud")["status"]
    assert status["state"] == "Completed", status

    stored = file_uri_path(status["log_uri"])
    assert stored.stat().st_size <= cap + 4096  # the cap, plus the notice and the runner's last lines
    log = ok(plane.cli("logs", "job", "e2e-loud")).stdout
    assert len(log.encode()) <= cap + 4096
    assert "bytes of log dropped" in log
    assert "the last line" in log  # the end of the output is what is kept


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server(plane: ControlPlane) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    error_line(plane.cli("get", "jobs", "--url", url), "cannot reach", url, "strato up")


def test_wrong_token(plane: ControlPlane) -> None:
    error_line(plane.cli("get", "jobs", "--token", "wrong"), "wrong API token")


def test_job_not_found(plane: ControlPlane) -> None:
    error_line(plane.cli("get", "job", "nope"), "TrainingJob 'nope' not found")
    error_line(plane.cli("logs", "job", "nope"), "TrainingJob 'nope' not found")


def test_unknown_kind(plane: ControlPlane) -> None:
    error_line(plane.cli("get", "widgets"), "unknown resource kind 'widgets'")


def test_malformed_hyperparameter_flag(plane: ControlPlane, tmp_path: Path) -> None:
    script = write_train_script(tmp_path / "src")
    error_line(run_cli("jobs", "submit", script, "--hp", "epochs", env=plane.env),
               "--hp 'epochs' must look like NAME=VALUE")
