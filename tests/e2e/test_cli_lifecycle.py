"""Following, stopping and deleting a running job from the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.cli import CLI, ControlPlane, error_line, json_out, ok
from tests.helpers import wait_until

SCRIPT = (
    "import pathlib, sys, time\n"
    "print('first line', flush=True)\n"
    "while not pathlib.Path(sys.argv[-1]).exists():\n"
    "    time.sleep(0.05)\n"
)


def test_follow_stop_and_delete_a_running_job(plane: ControlPlane, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "loop.py").write_text(SCRIPT)
    never = tmp_path / "never-created"
    job_file = tmp_path / "job.yaml"
    job_file.write_text(f"kind: TrainingJob\nname: e2e-follow\ncode: ./code\ncommand: [python, loop.py, '{never}']\n")
    ok(plane.cli("apply", "-f", job_file))

    follower = subprocess.Popen(
        [*CLI, "logs", "job", "e2e-follow", "-f"],
        env=plane.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        wait_until(lambda: "first line" in follower.stdout.readline(), 120, interval=0, what="first log line")
        assert follower.poll() is None  # still following: the job still runs
        stopped = ok(plane.cli("stop", "job", "e2e-follow"))
        assert "TrainingJob e2e-follow" in stopped.stdout
        assert follower.wait(120) == 0  # the stream ends when the job does
    finally:
        if follower.poll() is None:
            follower.kill()

    job = plane.job("e2e-follow")
    assert job["status"]["state"] == "Stopped"
    assert "stop requested by the user" in job["status"]["message"]
    waited = plane.wait("e2e-follow")
    assert waited.returncode == 1 and "Stopped" in waited.stdout  # wait exits 1 unless Completed

    attempts = json_out(plane.cli("get", "attempts", "job", "e2e-follow", "-o", "json"))
    assert isinstance(attempts, list) and [a["attempt"] for a in attempts] == [1]
    assert attempts[0]["outcome"] == "Stopped" and attempts[0]["exit_code"] in (143, -15)
    table = ok(plane.cli("get", "attempts", "job", "e2e-follow")).stdout
    assert "ATTEMPT" in table and "Stopped" in table
    error_line(plane.cli("get", "attempts", "e2e-follow"), "use: strato get attempts job NAME")

    status = json_out(plane.cli("status", "--home", plane.home, "-o", "json"))
    assert isinstance(status, dict) and status["jobs"].get("Stopped", 0) >= 1

    ok(plane.cli("delete", "job", "e2e-follow"))
    wait_until(lambda: plane.cli("get", "job", "e2e-follow").returncode == 1, 60, what="job record deleted")
    error_line(plane.cli("get", "job", "e2e-follow"), "TrainingJob 'e2e-follow' not found")


CHECKPOINTING = (
    "import pathlib, sys, time\n"
    "from strato import runtime\n"
    "with runtime.checkpoint() as d:\n"
    "    (d / 'state.txt').write_text('saved')\n"
    "print('checkpointed', flush=True)\n"
    "while not pathlib.Path(sys.argv[-1]).exists():\n"
    "    time.sleep(0.05)\n"
)


def test_interrupt_by_hand_and_see_goodput(plane: ControlPlane, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "job.py").write_text(CHECKPOINTING)
    release = tmp_path / "release"
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        f"kind: TrainingJob\nname: e2e-interrupt\ncode: ./code\ncommand: [python, job.py, '{release}']\n"
    )
    ok(plane.cli("apply", "-f", job_file))
    wait_until(lambda: "checkpointed" in plane.cli("logs", "job", "e2e-interrupt").stdout, 120, what="checkpoint")
    error_line(plane.cli("jobs", "interrupt", "e2e-interrupt", "--notice", "soon"), "--notice", "duration 'soon'")
    assert "interruption requested" in ok(plane.cli("jobs", "interrupt", "e2e-interrupt", "--notice", "2s")).stdout
    wait_until(lambda: plane.job("e2e-interrupt")["status"].get("attempt") == 2, 120, what="the restart")
    release.touch()
    ok(plane.wait("e2e-interrupt"))
    detail = ok(plane.cli("get", "job", "e2e-interrupt")).stdout
    assert "spot: 1 interruption(s)" in detail and "goodput:" in detail and "checkpoints:" in detail
    log = ok(plane.cli("logs", "job", "e2e-interrupt")).stdout  # the latest attempt's log
    assert "checkpoint restored v000001" in log
    error_line(plane.cli("jobs", "interrupt", "e2e-interrupt"), "is Completed; only a running job can be interrupted")


def test_submit_on_spot_with_exact_interruptions(plane: ControlPlane, tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(
        "import time\nfrom strato import runtime\n"
        "marker = runtime.checkpoint_dir() / 'started-before'\n"
        "print('second start' if marker.exists() else 'first start', flush=True)\n"
        "with runtime.checkpoint() as d:\n    (d / 'started-before').write_text('1')\n"
        "time.sleep(3)\n"
    )
    result = plane.cli("jobs", "submit", "work.py", "--name", "e2e-spot-submit", "--interrupt-at", "1s",
                       "--notice", "1s", "--wait", "-o", "json", cwd=tmp_path)
    job = json_out(result)
    assert isinstance(job, dict) and job["status"]["state"] == "Completed"
    assert job["spec"]["spot"]["interruptions"]["at"] == [1.0] and job["spec"]["spot"]["notice"] == 1.0
    assert [a["outcome"] for a in job["status"]["attempts"]] == ["Interrupted", "Succeeded"]
    assert "second start" in ok(plane.cli("logs", "job", "e2e-spot-submit")).stdout
    watched = ok(plane.cli("jobs", "watch", "e2e-spot-submit")).stdout.splitlines()
    assert [line.split()[1] for line in watched] == [
        "Pending", "Starting", "Running", "Interrupted", "Pending", "Starting", "Running", "Uploading", "Completed"]
    assert "SpotInterruption" in watched[3]
    error_line(plane.cli("jobs", "submit", "work.py", "--interrupt-at", "1s,oops", cwd=tmp_path),
               "spot.interruptions.at.1", "duration 'oops' is not understood")
