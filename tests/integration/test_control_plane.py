"""The control plane for real: a daemon killed with SIGKILL re-adopts its jobs, tokens guard
non-loopback servers, artifact paths cannot escape, secrets never leak, health and metrics answer."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import httpx
import psutil
import pytest

from strato.client import Client
from strato.config import Settings, load_settings
from strato.errors import StratoError
from strato.server import daemon
from strato.specs import TrainingJob
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

SLEEPER = (
    "import time, pathlib, sys\nprint('started', flush=True)\n"
    "while not pathlib.Path(sys.argv[-1]).exists(): time.sleep(0.05)\nprint('released', flush=True)\n"
)


def sleeper_job(tmp_path: Path, name: str, **fields: object) -> tuple[TrainingJob, Path]:
    code = tmp_path / f"code-{name}"
    code.mkdir()
    (code / "wait_for_file.py").write_text(SLEEPER)
    release = tmp_path / f"release-{name}"
    return TrainingJob(
        name=name, code=str(code), command=["python", "wait_for_file.py", str(release)], **fields
    ), release


def test_sigkilled_control_plane_readopts_running_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with control_plane(home) as (settings, client):
        spec, release = sleeper_job(tmp_path, "survivor")
        client.jobs.submit(spec)
        wait_until(lambda: client.jobs.get("survivor").status == "Running", 60, what="job running")
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
        assert daemon.read_info(settings) is None  # a killed server is not reported as running

    with control_plane(home) as (_, client):
        assert client.jobs.get("survivor").status == "Running"  # still running, not restarted
        release.touch()
        job = client.jobs.wait("survivor", timeout=60)
        assert job.status == "Completed", job.message
        assert job.data["status"]["attempt"] == 1
        assert "released" in "".join(client.jobs.logs("survivor"))
        states = [e["state"] for e in client.jobs.events("survivor")]
        assert states == ["Pending", "Starting", "Running", "Uploading", "Completed"]


def test_job_lost_while_control_plane_was_down_is_retried(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with control_plane(home) as (settings, client):
        spec, release = sleeper_job(tmp_path, "victim", retry={"max_attempts": 2})
        client.jobs.submit(spec)
        wait_until(lambda: client.jobs.get("victim").status == "Running", 60, what="job running")
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
    # While the control plane is down the task dies with the whole process group (a machine crash).
    for task in (home / "runs").iterdir():
        os.killpg(json.loads((task / "pid.json").read_text())["pid"], signal.SIGKILL)
    release.touch()
    with control_plane(home) as (_, client):
        job = client.jobs.wait("victim", timeout=90)
        assert job.status == "Completed", job.message
        attempts = job.data["status"]["attempts"]
        assert [a["outcome"] for a in attempts] == ["Lost", "Succeeded"]
        reasons = [e["reason"] for e in client.jobs.events("victim")]
        assert "Retrying" in reasons


def test_token_required_beyond_loopback(tmp_path: Path) -> None:
    with control_plane(tmp_path / "home", host="0.0.0.0") as (settings, client):
        token_file = settings.token_path
        assert token_file.stat().st_mode & 0o777 == 0o600
        client.jobs.list()  # the SDK sends the home's token
        url = client.url
        anonymous = httpx.get(f"{url}/api/v1/jobs")
        assert anonymous.status_code == 401
        assert "requires an API token" in anonymous.json()["error"]["message"]
        wrong = httpx.get(f"{url}/api/v1/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "wrong API token" in wrong.json()["error"]["message"]
        with pytest.raises(StratoError, match="wrong API token"):
            Client(url, "nope").jobs.list()
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_artifact_paths_cannot_escape_the_store(shared_platform: tuple[Settings, Client]) -> None:
    settings, client = shared_platform
    for raw in (
        "/api/v1/artifacts/..%2F..%2Fescape.txt",
        "/api/v1/artifacts/a/%2e%2e/%2e%2e/%2e%2e/escape.txt",
        "/api/v1/artifacts/%2Fetc%2Fpasswd",
    ):
        response = httpx.put(client.url + raw, content=b"x")
        assert response.status_code == 400, raw
        assert "invalid artifact path" in response.json()["error"]["message"]
    assert not (settings.home / "escape.txt").exists() and not (settings.home.parent / "escape.txt").exists()


def test_secrets_never_appear_in_logs_api_or_database(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    settings, client = shared_platform
    code = tmp_path / "code"
    code.mkdir()
    (code / "leak.py").write_text(
        "import os\nprint('token is', os.environ['DB_PASSWORD'])\n"
        "assert os.environ['DB_PASSWORD'] == 'hunter2-very-secret'\n"
    )
    job = client.jobs.submit(
        TrainingJob(
            name="secretive", code=str(code), command="python leak.py", secrets={"DB_PASSWORD": "hunter2-very-secret"}
        )
    )
    job.wait(timeout=60)
    assert job.status == "Completed", job.message
    logs = "".join(client.jobs.logs("secretive"))
    assert "token is ***" in logs and "hunter2" not in logs
    assert "hunter2" not in json.dumps(client.get("jobs", "secretive"))
    with sqlite3.connect(settings.home / "strato.db") as db:
        dump = "\n".join(db.iterdump())
    assert "hunter2" not in dump
    for path in (settings.home / "artifacts").rglob("*"):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes(), path


def test_health_metrics_and_openapi(shared_platform: tuple[Settings, Client]) -> None:
    _, client = shared_platform
    assert client.health()["status"] == "ok"
    metrics = httpx.get(f"{client.url}/metrics").text
    assert "strato_reconcile_pass_seconds_count" in metrics and "strato_http_requests_total" in metrics
    assert httpx.get(f"{client.url}/docs").status_code == 200
    paths = httpx.get(f"{client.url}/openapi.json").json()["paths"]
    assert "/api/v1/apply" in paths and "/api/v1/jobs/{name}/logs" in paths


def test_second_server_on_same_home_is_refused(platform: tuple[Settings, Client]) -> None:
    settings, _ = platform
    with pytest.raises(StratoError, match="already runs for home"):
        daemon.serve(load_settings(home=settings.home, environ={}, port=0))


@pytest.mark.postgres
def test_jobs_on_postgresql_metadata(tmp_path: Path, postgres_url: str) -> None:
    with control_plane(tmp_path / "home", database_url=postgres_url) as (_, client):
        code = tmp_path / "code"
        code.mkdir()
        (code / "hello.py").write_text("print('accuracy=0.75')\n")
        job = client.jobs.submit(
            TrainingJob(
                name="pg-job",
                code=str(code),
                command="python hello.py",
                metric_definitions=[{"name": "acc", "regex": r"accuracy=([0-9.]+)"}],
            )
        )
        job.wait(timeout=60)
        assert job.status == "Completed" and job.metrics == {"acc": 0.75}
    assert not (tmp_path / "home" / "strato.db").exists()


@pytest.mark.s3
def test_jobs_on_s3_artifact_store_with_s3_input(tmp_path: Path, s3_store_url: tuple[str, dict]) -> None:
    import fsspec

    bucket, options = s3_store_url
    prefix = f"{bucket}/it-{os.getpid()}"
    fs = fsspec.filesystem("s3", **options)
    fs.pipe(f"{prefix}/data/train.csv", b"x,y\n1,2\n")
    with control_plane(tmp_path / "home", artifact_url=f"{prefix}/store", artifact_options=options) as (_, client):
        code = tmp_path / "code"
        code.mkdir()
        (code / "train.py").write_text(
            "import os, pathlib\n"
            "rows = pathlib.Path(os.environ['SM_CHANNEL_TRAIN'], 'train.csv').read_text()\n"
            "pathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text(rows.upper())\n"
        )
        job = client.jobs.submit(
            TrainingJob(
                name="s3-job", code=str(code), command="python train.py", inputs={"train": f"{prefix}/data/train.csv"}
            )
        )
        job.wait(timeout=90)
        assert job.status == "Completed", job.message
        assert job.model_uri == f"{prefix}/store/jobs/s3-job/{job.data['uid']}/model"
        assert fs.cat(f"{job.model_uri}/model.txt") == b"X,Y\n1,2\n"
        assert fs.exists(f"{prefix}/store/jobs/s3-job/{job.data['uid']}/attempt-1/log.txt")


def test_wait_is_a_long_poll_with_a_timeout(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    spec, release = sleeper_job(tmp_path, "long-poll")
    client.jobs.submit(spec)
    wait_until(lambda: client.jobs.get("long-poll").status == "Running", 60, what="job running")
    answer = httpx.get(f"{client.url}/api/v1/jobs/long-poll/wait", params={"timeout": 0.3}, timeout=30).json()
    assert answer["status"]["state"] == "Running"  # not done: answered with the current state
    with pytest.raises(StratoError, match=r"TrainingJob 'long-poll' is still Running after 0.5s"):
        client.jobs.wait("long-poll", timeout=0.5)
    release.touch()
    assert client.jobs.wait("long-poll", timeout=60).status == "Completed"
