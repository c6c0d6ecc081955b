"""The fake backend's test helpers, and building a backend from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.compute import BACKENDS, FakeBackend, LocalBackend, TaskSpec, TaskState, create_backend
from strato.config import Settings
from strato.errors import InvalidArgument


def test_stop_with_delay_leaves_the_ending_to_the_test() -> None:
    backend = FakeBackend(stop_delay=True)
    task_id = backend.submit(TaskSpec(["train"]))
    backend.stop(task_id, grace=7)

    assert backend.status(task_id).state is TaskState.RUNNING
    assert backend.stops == [(task_id, 7)]
    backend.finish(task_id, 0)
    status = backend.status(task_id)
    assert status.state is TaskState.SUCCEEDED and status.stopped


def test_lose_usage_and_submitted_are_recorded() -> None:
    backend = FakeBackend()
    notified: list[str] = []
    backend.add_listener(notified.append)
    spec = TaskSpec(["train"], labels={"job": "j1"})
    task_id = backend.submit(spec)
    assert backend.submitted == [(task_id, spec)]

    backend.set_usage(task_id, cpu_percent=150, memory=300)
    backend.set_usage(task_id, cpu_percent=50, memory=100)
    sample = backend.usage(task_id)
    assert sample is not None and (sample.cpu_percent, sample.memory, sample.peak_memory) == (50, 100, 300)

    backend.lose(task_id, "node went away")
    status = backend.status(task_id)
    assert status.state is TaskState.LOST and status.message == "node went away"
    assert status.peak_memory == 300
    assert notified == [task_id]


def test_create_backend_builds_the_configured_backend(tmp_path: Path) -> None:
    local = create_backend(Settings(home=tmp_path, local_cpus=3, local_memory=2 * 1024**3))
    try:
        assert isinstance(local, LocalBackend)
        assert local.run_dir == tmp_path / "runs"
        assert local.capacity().cpus == 3 and local.capacity().memory == 2 * 1024**3
    finally:
        local.close()
    assert isinstance(create_backend(Settings(home=tmp_path, compute="fake")), FakeBackend)
    assert list(BACKENDS) == ["fake", "local"]


def test_an_unknown_backend_name_suggests_the_closest() -> None:
    with pytest.raises(InvalidArgument, match="did you mean 'local'"):
        create_backend(Settings(home=Path("/nonexistent"), compute="lcoal"))


def test_interrupt_records_the_notice_and_stops() -> None:
    backend = FakeBackend(clock=lambda: 100.0)
    task_id = backend.submit(TaskSpec(["python", "x.py"]))
    backend.interrupt(task_id, notice=30)
    assert backend.notices[0][0] == task_id and backend.notices[0][1]["notice_seconds"] == 30
    assert backend.stops == [(task_id, 30)]
    assert backend.status(task_id).stopped
