"""A job service and reconciler over SQLite, a local artifact store and the fake backend, driven by
``tick()`` with an injected clock: the reconciler's unit-test world."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.compute import FakeBackend, TaskResources
from strato.jobs.reconciler import JobContext, TrainingJobReconciler
from strato.jobs.service import JobService
from strato.specs import TrainingJob
from strato.store.artifacts import open_artifact_store
from strato.store.metadata import MetadataStore
from strato.store.secrets import SecretBox


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A job service and reconciler over SQLite, a local artifact store and the fake backend."""

    def __init__(self, tmp_path: Path, cpus: float = 2):
        self.clock = Clock()
        self.backend = FakeBackend(TaskResources(cpus=cpus, memory=8 * 1024**3), clock=self.clock)
        self.store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", clock=self.clock)
        self.artifacts = open_artifact_store(str(tmp_path / "artifacts"))
        self.ctx = JobContext(
            store=self.store,
            artifacts=self.artifacts,
            backends={"fake": self.backend},
            default_backend="fake",
            secrets=SecretBox(tmp_path / "secret.key"),
            artifact_url=str(tmp_path / "artifacts"),
            artifact_options={},
            stop_grace=7.0,
            clock=self.clock,
        )
        self.service = JobService(self.ctx)
        self.reconciler = TrainingJobReconciler(self.ctx)

    def submit(self, **fields: object) -> str:
        spec = TrainingJob.model_validate({"name": "job", "command": "python train.py", **fields})
        self.service.apply(spec)
        return spec.name

    def tick(self) -> None:
        self.reconciler.begin_pass()
        for record in self.store.list(active=True):
            self.reconciler.reconcile(record)

    def job(self, name: str = "job"):
        return self.store.get("TrainingJob", name)

    def task(self, name: str = "job") -> str:
        return str(self.job(name).status["task_id"])


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def states(world: World, name: str = "job") -> list[str]:
    return [e.state for e in world.store.events(world.job(name).uid)]
