"""Distributed jobs through the reconciler and the fake backend: the gang starts whole or not at all,
each worker is told its place, one worker's failure, loss or interruption ends the gang and the whole
gang restarts, logs stay apart per worker, and a restarted control plane carries on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strato.compute import FakeBackend, TaskResources, TaskSpec
from strato.errors import NotFound, ResourcesImpossible
from strato.jobs.environment import Cluster
from strato.jobs.reconciler import TrainingJobReconciler
from tests.unit.jobs.world import World, states

GANG = {"instance_count": 2, "distribution": "torch", "resources": {"cpus": 1}}


@pytest.fixture
def slow_world(tmp_path: Path) -> World:
    """Fake tasks that do not end on SIGTERM by themselves, so 'the others are being stopped' shows."""
    world = World(tmp_path)
    world.backend = FakeBackend(TaskResources(cpus=2, memory=8 * 1024**3), stop_delay=True, clock=world.clock)
    world.ctx.backends = {"fake": world.backend}
    return world


def workers(world: World, name: str = "job") -> list[str]:
    return list(world.job(name).status["task_ids"])


def payload(spec: TaskSpec) -> dict:
    return json.loads(spec.env["STRATO_TASK"])


def spec_of(world: World, task_id: str) -> TaskSpec:
    return next(spec for tid, spec in world.backend.submitted if tid == task_id)


def running(world: World, *task_ids: str) -> None:
    for task_id in task_ids:
        world.backend.emit_log(task_id, f"[strato] phase Running at {world.clock.now:.3f}: python train.py\n")
    world.tick()


# Gang scheduling ---------------------------------------------------------------------------------------
def test_a_gang_starts_whole_or_waits_whole(world: World) -> None:
    world.submit(name="first", resources={"cpus": 1})
    world.submit(name="gang", **GANG)
    world.submit(name="later", resources={"cpus": 1})
    world.tick()
    # One cpu is free, the gang needs two at once: none of its workers starts, and later jobs queue behind it.
    assert world.job("first").state == "Starting"
    assert world.job("gang").state == "Pending" and world.job("later").state == "Pending"
    assert world.job("gang").status["message"] == (
        "waiting for resources: needs 2 tasks at once, 2 cpu and 1.0GiB in all; "
        "1 cpu and 7.5GiB free of 2 cpu and 8.0GiB"
    )
    assert len(world.backend.submitted) == 1 and world.backend.free().cpus == 1

    world.backend.finish(world.task("first"), 0)
    world.tick()
    job = world.job("gang")
    assert job.state == "Starting"
    assert world.backend.gangs[-1] == job.status["task_ids"] and len(job.status["task_ids"]) == 2
    assert job.status["task_id"] == job.status["task_ids"][0]  # rank 0, where single jobs keep theirs
    assert job.status["message"] == f"attempt 1 started as 2 workers: {', '.join(job.status['task_ids'])}"
    assert world.job("later").state == "Pending"


def test_more_workers_than_can_ever_run_is_refused_at_apply(world: World) -> None:
    with pytest.raises(ResourcesImpossible) as caught:
        world.submit(instance_count=4, resources={"cpus": 1})
    assert caught.value.message == (
        "instance_count: 4 workers of 1 cpu each need 4 cpus at once, but the fake compute backend has 2 cpus "
        "in all; lower instance_count or resources.cpus, or use a bigger compute target"
    )
    assert caught.value.details == {"resource": "cpus", "instance_count": 4, "requested": 4, "available": 2}
    with pytest.raises(ResourcesImpossible, match=r"instance_count: 2 workers of 5.0GiB of memory each need 10.0GiB"):
        world.submit(instance_count=2, resources={"cpus": 1, "memory": "5Gi"})
    with pytest.raises(ResourcesImpossible, match=r"^resources.cpus: asks for 3 but"):
        world.submit(instance_count=2, resources={"cpus": 3})  # one worker alone never fits: said as before
    assert world.store.list() == []


# What each worker is told ------------------------------------------------------------------------------
def test_each_worker_is_told_its_rank_and_where_the_gang_meets(world: World) -> None:
    world.submit(**GANG)
    world.tick()
    first, second = (payload(spec_of(world, t))["cluster"] for t in workers(world))
    assert [first["rank"], second["rank"]] == [0, 1]
    assert first["size"] == second["size"] == 2 and first["distribution"] == "torch"
    assert first["ports"] == second["ports"] and len(set(first["ports"])) == 2
    assert first["addr"] == "127.0.0.1" and first["restarts"] == 0 and first["run_id"] == world.job().uid
    assert [spec_of(world, t).labels["strato.rank"] for t in workers(world)] == ["0", "1"]

    env = Cluster(**second).environment()
    port = first["ports"][0]
    assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK")} == {
        "RANK": "1",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "1",
        "NODE_RANK": "1",
        "GROUP_RANK": "1",
    }
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", str(port))
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"] and env["SM_CURRENT_HOST"] == "algo-2"
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_host"] == "algo-2"
    addresses = [f"127.0.0.1:{p}" for p in first["ports"]]
    assert json.loads(env["CLUSTER_SPEC"]) == {
        "cluster": {"workerpool0": addresses[:1], "workerpool1": addresses[1:]},
        "task": {"type": "workerpool1", "index": 0},
    }
    assert json.loads(env["TF_CONFIG"])["task"] == {"type": "worker", "index": 0}
    assert json.loads(Cluster(**first).environment()["TF_CONFIG"])["cluster"] == {
        "chief": addresses[:1],
        "worker": addresses[1:],
    }


def test_distribution_none_gives_hosts_and_ranks_but_no_torch_variables() -> None:
    env = Cluster(rank=2, size=3, distribution="none", ports=[5000, 5001, 5002]).environment()
    assert env["SM_CURRENT_HOST"] == "algo-3" and env["STRATO_RANK"] == "2" and env["STRATO_WORLD_SIZE"] == "3"
    assert not {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} & set(env)
    single = Cluster().environment()  # a single-worker job sees what it always saw
    assert json.loads(single["SM_HOSTS"]) == ["algo-1"] and "TF_CONFIG" not in single and "RANK" not in single
    assert json.loads(single["CLUSTER_SPEC"]) == {
        "cluster": {"workerpool0": ["localhost:2222"]},
        "task": {"type": "workerpool0", "index": 0},
    }


# Phases, metrics and logs ------------------------------------------------------------------------------
def test_rank_0_speaks_for_the_job_and_every_log_is_kept_apart(world: World) -> None:
    world.submit(metric_definitions=[{"name": "loss", "regex": r"loss=([0-9.]+)"}], **GANG)
    world.tick()
    zero, one = workers(world)
    world.backend.emit_log(one, "[strato] phase Running at 1.0: x\nloss=9.0\nworker one says hi\n")
    world.tick()
    assert world.job().state == "Starting" and "metrics" not in world.job().status  # not from rank 1
    world.backend.emit_log(zero, "[strato] phase Running at 2.0: x\nloss=0.5\nworker zero says hi\n")
    world.tick()
    assert world.job().state == "Running" and world.job().status["metrics"] == {"loss": 0.5}

    live = world.service.logs("job", worker=1)
    assert "worker one says hi" in live["data"] and "zero" not in live["data"] and live["worker"] == 1
    assert "worker zero says hi" in world.service.logs("job")["data"]  # rank 0 by default

    world.backend.finish(one, 0)
    world.tick()
    assert world.job().state == "Running"  # rank 1 is done; the job waits for every worker
    world.backend.finish(zero, 0)
    world.tick()
    job = world.job()
    assert job.state == "Completed", job.status["message"]
    prefix = f"jobs/job/{job.uid}/attempt-1"
    assert b"worker zero says hi" in world.artifacts.get_bytes(f"{prefix}/log.txt")
    assert b"worker zero says hi" in world.artifacts.get_bytes(f"{prefix}/worker-0/log.txt")
    assert b"worker one says hi" in world.artifacts.get_bytes(f"{prefix}/worker-1/log.txt")
    assert job.status["worker_log_uris"][1].endswith("attempt-1/worker-1/log.txt")
    stored = world.service.logs("job", worker=1)
    assert "worker one says hi" in stored["data"] and "zero" not in stored["data"] and stored["complete"]
    with pytest.raises(NotFound, match=r"TrainingJob 'job' has no worker 2: it has 2 \(workers 0 to 1\)"):
        world.service.logs("job", worker=2)
    entry = job.status["attempts"][0]
    assert entry["task_ids"] == [zero, one] and [w["state"] for w in entry["workers"]] == ["SUCCEEDED"] * 2
    assert "task_ids" not in job.status and world.backend.list_tasks() == []  # every worker released


def test_a_single_worker_job_has_no_other_worker(world: World) -> None:
    world.submit()
    world.tick()
    with pytest.raises(NotFound, match=r"has no worker 1: it has 1 \(worker 0 only\)"):
        world.service.logs("job", worker=1)


# One worker ends the gang ------------------------------------------------------------------------------
def test_one_failing_worker_stops_the_others_and_fails_the_job_as_itself(slow_world: World) -> None:
    world = slow_world
    world.submit(**GANG)
    world.tick()
    zero, one = workers(world)
    running(world, zero, one)
    world.backend.emit_log(one, '[strato] failure-reason "ValueError: bad shard"\nTraceback: boom\n')
    world.clock.now += 3
    world.backend.finish(one, 1)
    world.tick()
    job = world.job()
    assert world.backend.stops == [(zero, 7.0)]  # at once, with the stop grace
    assert job.state == "Running"
    assert job.status["message"] == "worker 1 ended (exited with code 1); stopping the other 1 worker(s)"
    world.tick()
    assert world.backend.stops == [(zero, 7.0)]  # stopped once, not on every pass
    world.clock.now += 1
    world.backend.emit_log(zero, "RuntimeError: gloo connection closed by peer\n")
    world.backend.finish(zero, 143)
    world.tick()
    job = world.job()
    assert job.state == "Failed"
    assert job.status["message"].startswith("user code failed with exit code 1 on worker 1: ValueError: bad shard")
    assert "Traceback: boom" in job.status["message"] and "gloo" not in job.status["message"]
    assert job.status["exit_code"] == 1 and job.status["attempts"][0]["outcome"] == "Failed"
    assert [w["stopped"] for w in job.status["attempts"][0]["workers"]] == [True, False]
    assert world.backend.list_tasks() == []


def test_a_lost_worker_restarts_the_whole_gang(world: World) -> None:
    world.submit(retry={"max_attempts": 2}, **GANG)
    world.tick()
    zero, one = workers(world)
    ports = payload(spec_of(world, zero))["cluster"]["ports"]
    running(world, zero, one)
    world.backend.lose(one, "node went away")
    world.tick()  # the gang breaks: rank 0 is stopped (the fake ends it at once)...
    assert world.backend.stops == [(zero, 7.0)] and world.job().state == "Running"
    world.tick()  # ...and the next pass sees every worker ended
    job = world.job()
    assert job.state == "Pending"
    assert job.status["message"] == "attempt 1 ended (worker 1: node went away); retrying as attempt 2 of 2"
    assert job.status["attempts"][0]["outcome"] == "Lost"
    world.tick()
    job = world.job()
    assert job.state == "Starting" and job.status["attempt"] == 2
    new = workers(world)
    assert len(new) == 2 and not set(new) & {zero, one}
    cluster = payload(spec_of(world, new[1]))["cluster"]
    assert cluster["restarts"] == 1 and cluster["ports"] != ports  # a new meeting place per attempt
    assert states(world).count("Starting") == 2


def test_a_vanished_worker_is_blamed_before_the_peers_it_broke(world: World) -> None:
    world.submit(retry={"max_attempts": 2}, **GANG)
    world.tick()
    zero, one = workers(world)
    running(world, zero, one)
    world.backend.lose(one)  # no recorded end time: it vanished
    world.clock.now += 1
    world.backend.finish(zero, 1)  # its peer then failed on the broken connection
    world.tick()
    job = world.job()
    assert job.state == "Pending" and "worker 1: the fake task vanished" in job.status["message"]


def test_the_gang_is_interrupted_as_one_and_restarts_whole(slow_world: World) -> None:
    world = slow_world
    world.submit(spot={"cloud": "gcp", "interruptions": {"at": ["10s"]}}, **GANG)
    world.tick()
    zero, one = workers(world)
    running(world, zero, one)
    world.clock.now += 11
    world.tick()
    job = world.job()
    assert job.state == "Interrupted"
    assert [task for task, _ in world.backend.notices] == [zero, one]  # every worker gets the notice
    assert world.backend.stops == [(zero, 30.0), (one, 30.0)]  # and is killed when it runs out
    world.backend.finish(one, 143)
    world.tick()
    assert world.job().state == "Interrupted"  # a stopped worker does not break the gang twice
    world.backend.finish(zero, 143)
    world.tick()
    job = world.job()
    assert job.state == "Pending" and job.status["attempts"][0]["outcome"] == "Interrupted"
    world.tick()
    assert world.job().state == "Starting" and len(set(workers(world)) - {zero, one}) == 2


def test_stop_and_delete_reach_every_worker(world: World) -> None:
    world.submit(**GANG)
    world.tick()
    zero, one = workers(world)
    world.service.stop("job")
    world.tick()
    assert sorted(task for task, _ in world.backend.stops) == sorted([zero, one])
    world.tick()
    assert world.job().state == "Stopped" and world.job().status["attempts"][0]["outcome"] == "Stopped"

    world.submit(name="doomed", **GANG)
    world.tick()
    world.service.delete("doomed")
    world.tick()
    world.tick()
    with pytest.raises(NotFound):
        world.job("doomed")
    assert world.backend.list_tasks() == []


def test_a_restarted_control_plane_follows_every_worker(world: World) -> None:
    world.submit(**GANG)
    world.tick()
    zero, one = workers(world)
    world.reconciler = TrainingJobReconciler(world.ctx)  # a new control plane over the same store and tasks
    running(world, zero, one)
    world.backend.finish(one, 0)
    world.backend.finish(zero, 0)
    world.tick()
    assert world.job().state == "Completed" and world.backend.list_tasks() == []


def test_a_job_stored_before_gangs_existed_is_still_followed(world: World) -> None:
    world.submit()
    world.tick()
    job = world.job()
    legacy = {k: v for k, v in job.status.items() if k != "task_ids"}  # what an older control plane wrote
    world.store.update_status(job.uid, legacy)
    world.backend.finish(legacy["task_id"], 0)
    world.tick()
    assert world.job().state == "Completed"
