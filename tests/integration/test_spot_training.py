"""The correctness proof of spot training: a seeded script that checkpoints every epoch, interrupted
several times at random moments, ends with exactly the model and metrics of the same job run without
interruptions; and the notice reaches the script through strato.runtime."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from strato.client import Client
from strato.config import Settings
from strato.specs import TrainingJob

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spot"


def model_of(job_data: dict) -> tuple[bytes, str]:
    model = Path(job_data["status"]["model_uri"].removeprefix("file://"))
    return (model / "weights.npy").read_bytes(), (model / "metrics.json").read_text()


@pytest.mark.slow
def test_interrupted_run_ends_with_the_same_model(shared_platform: tuple[Settings, Client]) -> None:
    _, client = shared_platform
    base = {"code": str(EXAMPLE), "command": "python train.py", "hyperparameters": {"epochs": 10}}
    client.jobs.submit(TrainingJob(name="spot-reference", **base))
    rng = random.Random(20261129)  # one generator: a fresh one per draw gave the same moment three times
    moments = sorted(rng.uniform(2.0, 8.0) for _ in range(3))
    client.jobs.submit(
        TrainingJob(
            name="spot-interrupted",
            **base,
            spot={"notice": "1s", "interruptions": {"at": [f"{m:.2f}s" for m in moments]}},
        )
    )
    reference = client.jobs.wait("spot-reference", timeout=300)
    interrupted = client.jobs.wait("spot-interrupted", timeout=300)
    assert reference.status == "Completed", reference.message
    assert interrupted.status == "Completed", interrupted.message

    assert model_of(interrupted.data) == model_of(reference.data)  # bit for bit
    status = interrupted.data["status"]
    outcomes = [a["outcome"] for a in status["attempts"]]
    assert outcomes.count("Interrupted") == 3 and outcomes[-1] == "Succeeded"
    assert status["spot"]["interruptions"] == 3
    assert status["checkpoint"]["count"] >= 4 and status["checkpoint"]["cost"] > 0  # rapid saves coalesce
    assert 0 < status["goodput"]["goodput"] < 1 and status["goodput"]["lost_seconds"] > 0
    log = "".join(client.jobs.logs("spot-interrupted"))
    assert "resumed from epoch" in log and "checkpoint restored v" in log
    reasons = [e["reason"] for e in client.jobs.events("spot-interrupted")]
    assert reasons.count("SpotInterruption") == 6  # each: Running -> Interrupted, then -> Pending


NOTICE_SCRIPT = """
import time
from strato import runtime

def on_notice():
    print(f"notice: {runtime.interruption_notice():.0f}s left", flush=True)

runtime.on_interruption(on_notice)
print("working", flush=True)
while True:
    time.sleep(0.05)
"""


def test_the_notice_reaches_the_script(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    (tmp_path / "loop.py").write_text(NOTICE_SCRIPT)
    client.jobs.submit(
        TrainingJob(
            name="spot-notice",
            code=str(tmp_path),
            command="python loop.py",
            spot={
                "cloud": "aws",
                "interruptions": {"at": ["1s"]},
                "recovery": {"strategy": "give_up_after", "max_interruptions": 0},
            },
        )
    )
    job = client.jobs.wait("spot-notice", timeout=120)
    assert job.status == "Failed" and "more than max_interruptions (0)" in job.message
    log = "".join(client.jobs.logs("spot-notice"))
    assert "notice: 120s left" in log or "notice: 119s left" in log  # AWS's two minutes
    assert job.data["status"]["warnings"][0].startswith("this spot job saved no checkpoint")
    lost = job.data["status"]["attempts"][0]["progress_lost"]
    assert lost == pytest.approx(1.0, abs=1.0)  # nothing saved: all of its ~1 s of work
    assert np.isfinite(lost)
