"""The training job reconciler against the fake backend: every transition, with an injected clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strato.compute import FakeBackend, TaskResources
from strato.errors import AlreadyExists, InvalidArgument, ResourcesImpossible
from strato.jobs.reconciler import TrainingJobReconciler
from tests.unit.jobs.world import World, states


def test_happy_path_follows_phases_and_records_metrics(world: World) -> None:
    world.submit(metric_definitions=[{"name": "loss", "regex": r"loss=([0-9.]+)"}])
    world.tick()
    assert world.job().state == "Starting"
    task = world.task()
    world.backend.emit_log(task, "[strato] phase Starting: fetching\n[strato] phase Running: python train.py\n")
    world.backend.emit_log(task, "epoch 1 loss=0.50\nepoch 2 loss=0.25\n")
    world.tick()
    assert world.job().state == "Running"
    assert world.job().status["metrics"] == {"loss": 0.25}
    world.backend.emit_log(task, "[strato] phase Uploading\nloss=0.125")  # last line without newline
    world.backend.finish(task, 0)
    world.tick()
    job = world.job()
    assert job.state == "Completed" and not job.active
    assert states(world) == ["Pending", "Starting", "Running", "Uploading", "Completed"]
    assert [p.value for p in world.store.metrics(job.uid, ["loss"])] == [0.5, 0.25, 0.125]
    assert world.artifacts.get_bytes(f"jobs/job/{job.uid}/attempt-1/log.txt").endswith(b"loss=0.125")
    assert world.backend.list_tasks() == []  # released


def test_waits_for_capacity_in_order_with_a_reason(world: World) -> None:
    for name in ("a", "b", "c"):
        world.submit(name=name, resources={"cpus": 1})
    world.tick()
    assert [world.job(n).state for n in "abc"] == ["Starting", "Starting", "Pending"]
    assert "waiting for resources" in world.job("c").status["message"]
    world.backend.finish(world.task("a"), 0)
    world.tick()
    assert world.job("c").state == "Starting"


def test_impossible_request_is_refused_at_submit(world: World) -> None:
    with pytest.raises(ResourcesImpossible, match=r"resources.cpus: asks for 64 but .* has 2"):
        world.submit(resources={"cpus": 64})
    with pytest.raises(Exception, match="not found"):
        world.job()


def test_failure_carries_exit_code_and_last_log_lines(world: World) -> None:
    world.submit()
    world.tick()
    world.backend.emit_log(
        world.task(),
        "[strato] phase Running\nTraceback (most recent call last):\nZeroDivisionError: division by zero\n",
    )
    world.backend.finish(world.task(), 1)
    world.tick()
    job = world.job()
    assert job.state == "Failed"
    assert job.status["exit_code"] == 1
    assert "exit code 1" in job.status["message"] and "ZeroDivisionError: division by zero" in job.status["message"]
    assert world.store.events(job.uid)[-1].reason == "AlgorithmError"


def test_script_failure_reason_file_is_used(world: World) -> None:
    world.submit()
    world.tick()
    world.backend.emit_log(world.task(), '[strato] failure-reason "data has no label column"\n')
    world.backend.finish(world.task(), 3)
    world.tick()
    assert "data has no label column" in world.job().status["message"]


def test_infrastructure_exit_code_is_retried_then_gives_up(world: World) -> None:
    world.submit(retry={"max_attempts": 2, "exit_codes": [137]})
    world.tick()
    world.backend.finish(world.task(), 137)
    world.tick()
    assert world.job().state == "Pending"
    assert "retrying as attempt 2 of 2" in world.job().status["message"]
    world.tick()
    assert world.job().status["attempt"] == 2
    world.backend.finish(world.task(), 137)
    world.tick()
    job = world.job()
    assert job.state == "Failed"
    assert [a["exit_code"] for a in job.status["attempts"]] == [137, 137]
    assert states(world) == ["Pending", "Starting", "Pending", "Starting", "Failed"]


def test_user_error_is_not_retried(world: World) -> None:
    world.submit(retry={"max_attempts": 3})
    world.tick()
    world.backend.finish(world.task(), 1)
    world.tick()
    assert world.job().state == "Failed" and world.job().status["attempt"] == 1


def test_lost_task_is_retried_as_infrastructure_failure(world: World) -> None:
    world.submit(retry={"max_attempts": 2})
    world.tick()
    world.backend.lose(world.task(), "the process vanished")
    world.tick()
    assert world.job().state == "Pending" and "the process vanished" in world.job().status["message"]


def test_lost_task_without_retries_fails_as_process_lost(world: World) -> None:
    world.submit()
    world.tick()
    world.backend.lose(world.task(), "the process vanished")
    world.tick()
    assert world.job().state == "Failed"
    assert world.store.events(world.job().uid)[-1].reason == "ProcessLost"


def test_max_runtime_stops_the_job(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend = FakeBackend(TaskResources(cpus=2, memory=8 * 1024**3), stop_delay=True, clock=world.clock)
    world.ctx.backends = {"fake": world.backend}
    world.submit(max_runtime="30s")
    world.tick()
    world.clock.now += 29
    world.tick()
    assert world.job().state == "Starting" and world.backend.stops == []
    world.clock.now += 2
    world.tick()
    assert world.job().state == "Stopping" and world.backend.stops == [(world.task(), 7.0)]
    world.backend.finish(world.task(), 143)
    world.tick()
    job = world.job()
    assert job.state == "Stopped" and "max_runtime (30s)" in job.status["message"]
    assert world.store.events(job.uid)[-1].reason == "MaxRuntimeExceeded"


def test_stop_request_of_running_and_pending_jobs(world: World) -> None:
    world.submit(name="running")
    world.tick()
    world.service.stop("running")
    world.tick()  # SIGTERM sent; the fake ends the task at once
    world.tick()
    assert world.job("running").state == "Stopped"
    assert world.store.events(world.job("running").uid)[-1].reason == "StopRequested"

    world.submit(name="never", resources={"cpus": 2})
    world.submit(name="blocker", resources={"cpus": 2})
    world.tick()
    world.service.stop("blocker")
    world.tick()
    assert world.job("blocker").state == "Stopped"


def test_delete_stops_then_removes_record(world: World) -> None:
    world.submit()
    world.tick()
    task = world.task()
    world.service.delete("job")
    world.tick()
    world.tick()
    assert world.store.list() == []
    assert world.backend.stops and world.backend.stops[0][0] == task


def test_same_spec_is_idempotent_and_different_spec_is_refused(world: World) -> None:
    world.submit(hyperparameters={"a": 1})
    world.submit(hyperparameters={"a": 1})
    assert len(world.store.list()) == 1
    with pytest.raises(AlreadyExists, match=r"already exists .* with a different spec"):
        world.submit(hyperparameters={"a": 2})


def test_secrets_are_encrypted_at_rest_masked_in_api_and_passed_to_task(world: World) -> None:
    world.submit(secrets={"API_KEY": "s3cr3t-value"})
    record = world.job()
    assert "s3cr3t-value" not in json.dumps(record.spec)
    assert world.service.to_api(record)["spec"]["secrets"] == {"API_KEY": "***"}
    world.tick()
    _, spec = world.backend.submitted[0]
    assert spec.secret_env["API_KEY"] == "s3cr3t-value" and "API_KEY" not in spec.env
    world.backend.emit_log(world.task(), "key is s3cr3t-value\n")
    world.backend.finish(world.task(), 0)
    world.tick()
    assert b"s3cr3t-value" not in world.artifacts.get_bytes(f"jobs/job/{record.uid}/attempt-1/log.txt")


def test_missing_inputs_and_code_are_refused_with_the_field(world: World, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"inputs.train: path .*nowhere does not exist"):
        world.submit(inputs={"train": str(tmp_path / "nowhere")})
    with pytest.raises(InvalidArgument, match=r"code: directory .*missing does not exist"):
        world.submit(code=str(tmp_path / "missing"))
    with pytest.raises(InvalidArgument, match="relative path"):
        world.submit(inputs={"train": "./data"})


def test_usage_samples_are_stored(world: World) -> None:
    world.submit()
    world.tick()
    world.backend.set_usage(world.task(), cpu_percent=95.0, memory=300 * 2**20)
    world.tick()
    job = world.job()
    assert job.status["usage"]["peak_memory"] == 300 * 2**20
    assert [p.value for p in world.store.metrics(job.uid, ["system/cpu_percent"])] == [95.0]


def test_reconcile_is_idempotent_after_restart(world: World, tmp_path: Path) -> None:
    """A new reconciler (a restarted control plane) over the same store and backend carries on."""
    world.submit()
    world.tick()
    task = world.task()
    world.reconciler = TrainingJobReconciler(world.ctx)
    world.tick()
    world.tick()
    assert world.task() == task and len(world.backend.submitted) == 1
    world.backend.finish(task, 0)
    world.tick()
    assert world.job().state == "Completed"
