"""Distributed jobs for real: workers are local processes started as one gang, each told its place;
one failing worker ends the gang; a control plane killed while a gang runs re-adopts every worker; a
real 2-worker PyTorch DDP job (gloo, CPU) completes with its workers' logs kept apart, and the same job
interrupted once ends with exactly the model and metrics of the uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from strato.client import Client
from strato.config import Settings
from strato.server import daemon
from strato.specs import TrainingJob
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "distributed"
GANG = {"instance_count": 2, "distribution": "torch", "resources": {"cpus": 1}}

WHO_AM_I = """
import json, os, pathlib
keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SM_HOSTS", "SM_CURRENT_HOST",
        "STRATO_RANK", "OMP_NUM_THREADS"]
print("ENV=" + json.dumps({k: os.environ.get(k) for k in keys}), flush=True)
config = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"], "resourceconfig.json").read_text()
print("RESOURCECONFIG=" + config, flush=True)
print(f"only in the log of rank {os.environ['RANK']}", flush=True)
pathlib.Path(os.environ["SM_MODEL_DIR"], "rank.txt").write_text(os.environ["RANK"])
"""

# Rank 1 fails once rank 0 is surely running (rank 0 leaves a file that says so).
FAIL_ON_RANK_1 = """
import os, pathlib, sys, time
started = pathlib.Path(sys.argv[-1])
if os.environ["RANK"] == "1":
    while not started.exists():
        time.sleep(0.05)
    print("rank 1 gives up", flush=True)
    sys.exit(3)
print("rank 0 waits for its peer forever", flush=True)
started.touch()
while True:
    time.sleep(0.05)
"""

WAIT_FOR_FILE = """
import os, pathlib, sys, time
print(f"rank {os.environ['RANK']} started", flush=True)
while not pathlib.Path(sys.argv[-1]).exists():
    time.sleep(0.05)
print(f"rank {os.environ['RANK']} released", flush=True)
"""


def printed(log: str, key: str) -> object:
    line = next(line for line in log.splitlines() if line.startswith(f"{key}="))
    return json.loads(line.removeprefix(f"{key}="))


def script(tmp_path: Path, name: str, text: str) -> Path:
    code = tmp_path / name
    code.mkdir()
    (code / "main.py").write_text(text)
    return code


def test_each_worker_is_told_its_place_and_logs_stay_apart(
    shared_platform: tuple[Settings, Client], tmp_path: Path
) -> None:
    _, client = shared_platform
    code = script(tmp_path, "who", WHO_AM_I)
    client.jobs.submit(TrainingJob(name="who", code=str(code), command="python main.py", **GANG))
    job = client.jobs.wait("who", timeout=120)
    assert job.status == "Completed", job.message

    logs = ["".join(client.jobs.logs("who", worker=rank)) for rank in (0, 1)]
    envs = [printed(log, "ENV") for log in logs]
    port = envs[0]["MASTER_PORT"]
    for rank, env in enumerate(envs):
        assert env == {
            "RANK": str(rank),
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "SM_HOSTS": '["algo-1", "algo-2"]',
            "SM_CURRENT_HOST": f"algo-{rank + 1}",
            "STRATO_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        assert printed(logs[rank], "RESOURCECONFIG")["current_host"] == f"algo-{rank + 1}"
    assert "only in the log of rank 0" in logs[0] and "rank 1" not in logs[0]
    assert "only in the log of rank 1" in logs[1] and "rank 0" not in logs[1]
    model = Path(job.model_uri.removeprefix("file://"))  # type: ignore[union-attr]
    assert (model / "rank.txt").read_text() == "0"  # only rank 0 uploads


def test_one_failing_worker_stops_the_gang(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    code = script(tmp_path, "fails", FAIL_ON_RANK_1)
    command = ["python", "main.py", str(tmp_path / "rank-0-started")]
    client.jobs.submit(TrainingJob(name="half-broken", code=str(code), command=command, **GANG))
    job = client.jobs.wait("half-broken", timeout=120)
    assert job.status == "Failed"
    assert job.message.startswith("user code failed with exit code 3 on worker 1")
    assert "rank 1 gives up" in job.message  # the last lines are the failing worker's
    workers = job.data["status"]["attempts"][0]["workers"]
    assert [(w["exit_code"], w["stopped"]) for w in workers] == [(143, True), (3, False)]
    assert "rank 0 waits for its peer forever" in "".join(client.jobs.logs("half-broken"))


def test_a_killed_control_plane_re_adopts_every_worker(tmp_path: Path) -> None:
    home, release = tmp_path / "home", tmp_path / "release"
    code = script(tmp_path, "sleeper", WAIT_FOR_FILE)
    spec = TrainingJob(name="gang-survivor", code=str(code), command=["python", "main.py", str(release)], **GANG)
    with control_plane(home) as (settings, client):
        client.jobs.submit(spec)
        wait_until(
            lambda: all("started" in "".join(client.jobs.logs("gang-survivor", worker=r)) for r in (0, 1)),
            60,
            what="both workers running",
        )
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None

    with control_plane(home) as (_, client):
        assert client.jobs.get("gang-survivor").status == "Running"  # not restarted
        release.touch()
        job = client.jobs.wait("gang-survivor", timeout=60)
        assert job.status == "Completed", job.message
        assert job.data["status"]["attempt"] == 1
        for rank in (0, 1):
            assert f"rank {rank} released" in "".join(client.jobs.logs("gang-survivor", worker=rank))


# The PyTorch DDP proof -----------------------------------------------------------------------------------
def ddp_model(job_data: dict) -> tuple[dict, str]:
    import torch

    model = Path(job_data["status"]["model_uri"].removeprefix("file://"))
    return torch.load(model / "model.pt", weights_only=True), (model / "metrics.json").read_text()


def checkpoint_times(log: str) -> list[float]:
    return [float(t) for t in re.findall(r"\[strato\] checkpoint saved v\d+ at ([0-9.]+)", log)]


@pytest.mark.slow
def test_ddp_job_interrupted_once_ends_with_the_same_model(shared_platform: tuple[Settings, Client]) -> None:
    """Two workers each (they run one after the other on a 2-cpu machine). The reference run both shows
    the plain DDP job working and says when this machine trains: the interruption is placed half way
    between its first and last checkpoint, so it lands mid-training however fast the machine is.

    Bit for bit is possible here: with 2 workers each gradient element is reduced by one addition,
    which is commutative, so gloo's reduction order cannot change a bit; the sampler, the per-epoch
    seed and the checkpointed momentum make a resumed epoch compute exactly what it would have."""
    torch = pytest.importorskip("torch")
    _, client = shared_platform
    base = {"code": str(EXAMPLE), "command": "python train_ddp.py", "hyperparameters": {"epochs": 12, "pause": 0.02}}
    client.jobs.submit(TrainingJob(name="ddp-reference", **base, **GANG))
    reference = client.jobs.wait("ddp-reference", timeout=300)
    assert reference.status == "Completed", reference.message
    logs = ["".join(client.jobs.logs("ddp-reference", worker=rank)) for rank in (0, 1)]
    assert "rank 0 of 2 on algo-1" in logs[0] and "epoch 12 loss" in logs[0]
    assert "rank 1 of 2 on algo-2" in logs[1] and "epoch 1 loss" not in logs[1]  # kept apart
    losses = [point["value"] for point in client.jobs.metric_history("ddp-reference", "train_loss")]
    assert len(losses) == 12 and losses[-1] < losses[0] / 3  # one point per epoch, from rank 0 only; it learns

    status = reference.data["status"]
    saved = checkpoint_times(logs[0])
    moment = (saved[0] + saved[-1]) / 2 - status["started_at"]
    client.jobs.submit(
        TrainingJob(
            name="ddp-interrupted",
            **base,
            **GANG,
            spot={"notice": "1s", "interruptions": {"at": [f"{moment:.2f}s"]}},
        )
    )
    interrupted = client.jobs.wait("ddp-interrupted", timeout=300)
    assert interrupted.status == "Completed", interrupted.message
    outcomes = [a["outcome"] for a in interrupted.data["status"]["attempts"]]
    assert outcomes == ["Interrupted", "Succeeded"]
    resumed = [
        re.search(r"resumed from epoch (\d+)", "".join(client.jobs.logs("ddp-interrupted", worker=rank)))
        for rank in (0, 1)
    ]
    assert all(resumed), "the second attempt did not start from a checkpoint"
    assert resumed[0].group(1) == resumed[1].group(1)  # type: ignore[union-attr]  # every rank loaded the same
    assert 1 <= int(resumed[0].group(1)) < 12  # type: ignore[union-attr]  # the interruption hit mid-training

    ref_weights, ref_metrics = ddp_model(reference.data)
    got_weights, got_metrics = ddp_model(interrupted.data)
    assert ref_weights.keys() == got_weights.keys()
    assert all(torch.equal(ref_weights[k], got_weights[k]) for k in ref_weights)  # bit for bit
    assert got_metrics == ref_metrics
    assert interrupted.metrics == reference.metrics
