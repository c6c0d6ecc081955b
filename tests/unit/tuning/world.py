"""A tuning world: the training job world (SQLite store, fake backend, job service and reconciler, an
injected clock) plus the tuning service and reconciler over the same store, driven by ``tick()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strato.jobs.reconciler import TrainingJobReconciler
from strato.specs import TuningJob
from strato.store.metadata import ResourceRecord
from strato.tuning.reconciler import TuningContext, TuningJobReconciler
from strato.tuning.service import TuningService
from strato.tuning.study import Studies
from tests.unit.jobs.world import World

METRIC = "validation:accuracy"


def tuning_spec(**fields: Any) -> TuningJob:
    data: dict[str, Any] = {
        "kind": "TuningJob",
        "name": "tune",
        "template": {"command": "python train.py", "resources": {"cpus": 0.5}},
        "search_space": {
            "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "depth": {"type": "int", "low": 2, "high": 8},
            "kernel": {"type": "categorical", "values": ["linear", "rbf"]},
        },
        "objective": {"metric": METRIC, "direction": "maximize"},
        "max_trials": 4,
        "max_parallel": 2,
        "seed": 7,
    }
    data.update(fields)
    return TuningJob.model_validate(data)


class TuningWorld(World):
    def __init__(self, tmp_path: Path, cpus: float = 4):
        super().__init__(tmp_path, cpus=cpus)
        self.studies = Studies(self.store.url)
        self.tuning_ctx = TuningContext(
            store=self.store, jobs=self.service, secrets=self.ctx.secrets, studies=self.studies, clock=self.clock
        )
        self.tuning = TuningService(self.store, self.service, self.ctx.secrets)
        self.tuner = TuningJobReconciler(self.tuning_ctx)

    def restart(self) -> None:
        """A new control plane over the same store and backend: new reconcilers, a new Optuna storage."""
        self.studies.close()
        self.studies = Studies(self.store.url)
        self.tuning_ctx = TuningContext(
            store=self.store, jobs=self.service, secrets=self.ctx.secrets, studies=self.studies, clock=self.clock
        )
        self.tuner = TuningJobReconciler(self.tuning_ctx)
        self.reconciler = TrainingJobReconciler(self.ctx)

    def apply(self, **fields: Any) -> str:
        spec = tuning_spec(**fields)
        self.tuning.apply(spec)
        return spec.name

    def tick(self) -> None:
        self.reconciler.begin_pass()
        self.tuner.begin_pass()
        for record in self.store.list(active=True):
            if record.kind == "TuningJob":
                self.tuner.reconcile(record)
            else:
                self.reconciler.reconcile(record)

    def tuned(self, name: str = "tune") -> ResourceRecord:
        return self.store.get("TuningJob", name)

    def trials(self, name: str = "tune") -> list[dict[str, Any]]:
        return list(self.tuned(name).status.get("trials", []))

    def run_trial(self, job: str, values: list[float], *, exit_code: int = 0, metric: str = METRIC) -> None:
        """The trial's job reports ``values`` (steps 1, 2, ...) and ends with ``exit_code``."""
        self.report(job, values, metric=metric)
        self.backend.finish(self.task(job), exit_code)

    def report(self, job: str, values: list[float], *, metric: str = METRIC, first_step: int = 1) -> None:
        import json

        lines = "".join(
            f"[strato] metrics {json.dumps({metric: v, '_step': first_step + i})}\n" for i, v in enumerate(values)
        )
        self.backend.emit_log(self.task(job), "[strato] phase Running\n" + lines)

    def running_jobs(self) -> list[str]:
        return [j.name for j in self.store.list("TrainingJob") if j.state in ("Starting", "Running")]

    def settle(self, times: int = 3) -> None:
        for _ in range(times):
            self.tick()


@pytest.fixture
def tw(tmp_path: Path) -> TuningWorld:
    world = TuningWorld(tmp_path)
    yield world
    world.studies.close()
