"""Spot jobs through the reconciler and the fake backend: scheduled and manual interruptions, the
notice, recovery strategies, max_wait, checkpoint bookkeeping, goodput and advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.compute import FakeBackend, TaskResources
from strato.errors import Conflict, InvalidArgument
from tests.unit.jobs.world import World, states

SPOT = {"enabled": True, "cloud": "gcp", "interruptions": {"at": ["10s", "30s"]}}


@pytest.fixture
def slow_world(tmp_path: Path) -> World:
    """A world whose fake tasks do not end on SIGTERM by themselves (the notice period is observable)."""
    world = World(tmp_path)
    world.backend = FakeBackend(TaskResources(cpus=2, memory=8 * 1024**3), stop_delay=True, clock=world.clock)
    world.ctx.backends = {"fake": world.backend}
    return world


def run_until_running(world: World) -> str:
    world.tick()
    task = world.task()
    world.backend.emit_log(task, f"[strato] phase Running at {world.clock.now:.3f}: python train.py\n")
    world.tick()
    return task


def test_scheduled_interruption_gives_the_cloud_notice_then_restarts(slow_world: World) -> None:
    world = slow_world
    world.submit(spot=SPOT)
    task = run_until_running(world)
    assert world.job().status["spot"]["next_interruption_at"] == world.clock.now + 10
    world.clock.now += 4
    world.backend.emit_log(
        task, f"[strato] checkpoint saved v000001 at {world.clock.now:.3f}: save 0.5s, upload 0.5s\n"
    )
    world.clock.now += 6
    world.tick()
    job = world.job()
    assert job.state == "Interrupted" and "30s notice" in job.status["message"]  # GCP's notice
    assert world.backend.notices[0][1]["notice_seconds"] == 30 and world.backend.stops == [(task, 30)]
    world.clock.now += 2
    world.backend.finish(task, 143)  # the script saved and exited on SIGTERM
    world.tick()
    job = world.job()
    assert job.state == "Pending" and job.status["attempts"][0]["outcome"] == "Interrupted"
    assert job.status["attempts"][0]["progress_lost"] == pytest.approx(6.0)  # notice 6 s after the checkpoint
    assert "lost 6.0s of work" in job.status["message"]
    assert job.status["goodput"]["billed_seconds"] == pytest.approx(12.0)
    assert job.status["goodput"]["goodput"] == pytest.approx(0.5)
    world.tick()
    assert world.job().state == "Starting" and world.job().status["attempt"] == 2
    assert world.store.events(job.uid)[-3].reason == "SpotInterruption"
    # The second interruption is at 30 s after the first start.
    assert world.job().status["spot"]["next_interruption_at"] == pytest.approx(world.job().status["started_at"] + 30)


def test_a_script_that_finishes_within_the_notice_is_completed(slow_world: World) -> None:
    world = slow_world
    world.submit(spot=SPOT)
    task = run_until_running(world)
    world.clock.now += 11
    world.tick()
    world.backend.finish(task, 0)  # the notice was longer than the rest of the job
    world.tick()
    assert world.job().state == "Completed"
    assert states(world) == ["Pending", "Starting", "Running", "Interrupted", "Completed"]


def test_manual_interrupt_with_its_own_notice(slow_world: World) -> None:
    world = slow_world
    world.submit(name="plain")  # not even a spot job: `strato jobs interrupt` still simulates one
    with pytest.raises(Conflict, match="only a running job can be interrupted"):
        world.service.interrupt("plain")
    world.tick()
    task = world.task("plain")
    world.service.interrupt("plain", notice=5)
    world.tick()
    assert world.job("plain").state == "Interrupted" and world.backend.stops == [(task, 5)]
    world.backend.finish(task, 137)
    world.tick()
    job = world.job("plain")
    assert job.state == "Pending" and job.status["warnings"][0].startswith("this spot job saved no checkpoint")


def test_give_up_after_n_interruptions(tmp_path: Path) -> None:
    world = World(tmp_path)  # the fake ends a task at once on SIGTERM
    world.submit(
        spot={
            "interruptions": {"at": ["1s", "2s", "3s"]},
            "recovery": {"strategy": "give_up_after", "max_interruptions": 2},
        }
    )
    for _ in range(3):
        world.tick()  # start
        world.clock.now += 1.5
        world.tick()  # interrupt (the fake task ends at once)
        world.tick()  # recover
    job = world.job()
    assert job.state == "Failed"
    assert "more than max_interruptions (2)" in job.status["message"]
    assert [a["outcome"] for a in job.status["attempts"]] == ["Interrupted"] * 3


def test_restart_after_delay_waits(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.submit(
        spot={"interruptions": {"at": ["1s"]}, "recovery": {"strategy": "restart_after_delay", "delay": "20s"}}
    )
    world.tick()
    world.clock.now += 2
    world.tick()
    world.tick()
    assert world.job().state == "Pending"
    world.clock.now += 10
    world.tick()
    assert world.job().state == "Pending" and "restarting in 10s" in world.job().status["message"]
    world.clock.now += 11
    world.tick()
    assert world.job().state == "Starting"


def test_max_wait_stops_the_job_across_restarts(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.submit(
        spot={
            "max_wait": "60s",
            "interruptions": {"at": ["50s"]},
            "recovery": {"strategy": "restart_after_delay", "delay": "30s"},
        }
    )
    world.tick()
    world.clock.now += 51
    world.tick()
    world.tick()
    world.clock.now += 30
    world.tick()
    job = world.job()
    assert job.state == "Stopped" and "spot.max_wait (60s" in job.status["message"]
    assert world.store.events(job.uid)[-1].reason == "MaxWaitTimeExceeded"


def test_checkpoints_measure_cost_and_advice_follows(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.submit(spot={"interruptions": {"rate_per_hour": 6, "seed": 1}})
    world.tick()
    task = world.task()
    for version, cost in ((1, 2.0), (2, 4.0)):
        world.backend.emit_log(
            task,
            f"[strato] checkpoint saved v{version:06d} at {world.clock.now:.3f}: "
            f"save {cost / 2}s, upload {cost / 2}s\n",
        )
    world.tick()
    checkpoint = world.job().status["checkpoint"]
    assert checkpoint["count"] == 2 and checkpoint["cost"] == pytest.approx(3.0) and checkpoint["version"] == "v000002"
    world.backend.finish(task, 0)
    world.tick()
    advice = world.job().status["advice"]
    assert advice["mtbi"] == pytest.approx(600.0)
    assert advice["interval"] == pytest.approx((2 * 3.0 * 600) ** 0.5 - 3.0)
    # The next attempt's script gets what should_checkpoint() needs.
    _, spec = world.backend.submitted[0]
    assert spec.env["STRATO_MTBI_SECONDS"] == "600.000"


def test_unknown_recovery_strategy_is_refused(world: World) -> None:
    with pytest.raises(InvalidArgument, match=r"spot.recovery.strategy: unknown recovery strategy 'restat'"):
        world.submit(spot={"recovery": {"strategy": "restat"}})


def test_max_runtime_counts_running_time_not_waits(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.submit(
        max_runtime="20s",
        spot={"interruptions": {"at": ["15s"]}, "recovery": {"strategy": "restart_after_delay", "delay": "100s"}},
    )
    world.tick()
    world.clock.now += 16
    world.tick()
    world.tick()  # interrupted after 16 s of running
    world.clock.now += 101
    world.tick()  # restarted after a 101 s wait, which does not count against max_runtime
    world.clock.now += 3
    world.tick()
    assert world.job().state == "Starting"
    world.clock.now += 2
    world.tick()
    assert world.job().state == "Stopping"
    world.tick()
    assert world.job().state == "Stopped" and "max_runtime (20s)" in world.job().status["message"]
