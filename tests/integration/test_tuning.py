"""Tuning jobs on a real control plane: a real scikit-learn search to completion through the SDK, and a
control plane killed with SIGKILL while trials run, which resumes with no trial lost or run twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

import strato
from strato.server import daemon
from strato.store.metadata import MetadataStore
from strato.tuning.study import Studies
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tuning"

# A trial that waits for a file, then reports an objective that depends on its hyperparameters.
WAITING_TRIAL = """\
import argparse, pathlib, time
from strato import runtime
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--release")
args = parser.parse_args()
print("started", flush=True)
while not pathlib.Path(args.release).exists():
    time.sleep(0.05)
runtime.report(step=1, score=-(args.x - 0.3) ** 2)
"""


@pytest.mark.slow
def test_sklearn_search_runs_to_completion(tmp_path: Path) -> None:
    with control_plane(tmp_path / "home") as (_, client):
        spec = strato.TuningJob(
            name="digits",
            template={
                "code": str(EXAMPLE),
                "command": "python train.py",
                "hyperparameters": {"epochs": 3},
                "environment": {"OMP_NUM_THREADS": "1"},
                "resources": {"cpus": 1, "memory": "1Gi"},
            },
            search_space={
                "learning_rate_init": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "hidden": {"type": "categorical", "values": [16, 32]},
            },
            objective={"metric": "validation:accuracy", "direction": "maximize"},
            strategy="bayesian",
            max_trials=6,
            max_parallel=2,
            seed=3,
        )
        tuning = client.tuning.submit(spec)
        seen: list[int] = []
        tuning.wait(timeout=240, on_progress=lambda t: seen.append(t.counts.get("running", 0)))
        assert tuning.status == "Completed", tuning.message
        assert max(seen) <= 2
        trials = tuning.trials()
        assert [t["job"] for t in trials] == [f"digits-{n}" for n in range(6)]
        assert all(t["state"] == "Completed" for t in trials)
        best = tuning.best
        assert best is not None and best["objective"] == max(t["objective"] for t in trials)
        assert best["objective"] > 0.8
        job = client.jobs.get(best["job"])
        assert job.status == "Completed" and job.metrics["validation:accuracy"] == best["objective"]
        assert job.data["spec"]["hyperparameters"] == {"epochs": 3, **best["hyperparameters"]}
        assert job.data["spec"]["labels"]["strato.io/tuning-job"] == "digits"
        history = client.jobs.metric_history(best["job"], "validation:accuracy")
        assert [p["step"] for p in history] == [1, 2, 3]
        assert tuning.message.startswith("6 trials done; best trial ")


def test_sigkilled_control_plane_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(WAITING_TRIAL)
    release = tmp_path / "release"
    spec = strato.TuningJob(
        name="survivor",
        template={
            "code": str(code),
            "command": "python trial.py",
            "hyperparameters": {"release": str(release)},
            "resources": {"cpus": 0.5, "memory": "256Mi"},
        },
        search_space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        objective={"metric": "score", "direction": "maximize"},
        max_trials=4,
        max_parallel=2,
        seed=11,
    )
    with control_plane(home) as (settings, client):
        client.tuning.submit(spec)

        def two_running() -> bool:
            trials = client.tuning.trials("survivor")
            return len(trials) == 2 and all(client.jobs.get(t["job"]).status == "Running" for t in trials)

        wait_until(two_running, 60, interval=0.1, what="two trials running")
        before = {t["job"]: t["hyperparameters"] for t in client.tuning.trials("survivor")}
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None

    release.touch()
    with control_plane(home) as (settings, client):
        tuning = client.tuning.get("survivor").wait(timeout=120)
        assert tuning.status == "Completed", tuning.message
        trials = tuning.trials()
        assert [t["number"] for t in trials] == [0, 1, 2, 3]
        assert {t["job"]: t["hyperparameters"] for t in trials[:2]} == before  # the same two, re-adopted
        assert len({t["hyperparameters"]["x"] for t in trials}) == 4
        for trial in trials:
            job = client.jobs.get(trial["job"])
            assert job.status == "Completed" and job.data["status"]["attempt"] == 1  # none ran twice
        jobs = [j.name for j in client.jobs.list()]
        assert sorted(jobs) == [f"survivor-{n}" for n in range(4)]
        uid = tuning.data["uid"]
    store = MetadataStore(settings.resolved_database_url)
    studies = Studies(store.url)
    try:
        study = studies.open(f"strato-{uid}", "maximize")
        assert [t.number for t in study.trials] == [0, 1, 2, 3]
        assert all(t.state.name == "COMPLETE" for t in study.trials)
    finally:
        studies.close()
        store.close()
