"""Schedules with an injected clock: a run per cron time (named by it, so a repeat pass adds none),
overlap beyond max_concurrent skipped and recorded, catch-up on or off, pause and resume, the window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from strato.pipelines.schedule import ScheduleReconciler, ScheduleService
from strato.pipelines.service import PipelineRunService, PipelineService
from strato.specs import load_yaml_text
from strato.specs.pipeline_schedule import PipelineSchedule
from strato.store.metadata import MetadataStore, Transition

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC).timestamp()
PIPELINE = "kind: Pipeline\nname: flow\nsteps:\n  - {name: a, type: processing, command: 'true'}\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> tuple[MetadataStore, ScheduleService, ScheduleReconciler, Clock]:
    clock = Clock()
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", clock=clock)
    PipelineService(store).apply(load_yaml_text(PIPELINE)[0])  # type: ignore[arg-type]
    service = ScheduleService(store, PipelineRunService(store), clock=clock)
    return store, service, ScheduleReconciler(service), clock


def tick(store: MetadataStore, reconciler: ScheduleReconciler, name: str = "hourly") -> dict:
    record = store.get("PipelineSchedule", name)
    if record.active:
        reconciler.reconcile(record)
    return store.get("PipelineSchedule", name).status


def runs(store: MetadataStore) -> list[str]:
    return sorted(r.name for r in store.list("PipelineRun"))


def test_runs_at_each_cron_time_and_skips_overlap(world: tuple) -> None:
    store, service, reconciler, clock = world
    service.apply(PipelineSchedule(name="hourly", pipeline="flow", cron="0 * * * *"))
    tick(store, reconciler)
    assert runs(store) == []  # nothing due yet
    clock.now = T0 + 3600 + 5
    tick(store, reconciler)
    tick(store, reconciler)  # the same due time again: no second run
    assert runs(store) == ["hourly-20261201-0100"]
    clock.now = T0 + 2 * 3600 + 5  # the first run is still Pending: max_concurrent 1 skips this one
    status = tick(store, reconciler)
    assert runs(store) == ["hourly-20261201-0100"]
    assert status["skipped"][-1]["reason"] == "1 run(s) still running (max_concurrent 1)"
    first = store.get("PipelineRun", "hourly-20261201-0100").uid
    store.update_status(first, {}, Transition("Succeeded", "Ended", ""), active=False)  # the run ended
    clock.now = T0 + 3 * 3600 + 5
    tick(store, reconciler)
    assert runs(store) == ["hourly-20261201-0100", "hourly-20261201-0300"]


def test_catch_up_pause_and_window(world: tuple) -> None:
    store, service, reconciler, clock = world
    service.apply(PipelineSchedule(name="hourly", pipeline="flow", cron="0 * * * *", catch_up=True,
                                   max_concurrent=10))  # fmt: skip
    clock.now = T0 + 3 * 3600 + 5  # the control plane was down for three due times
    tick(store, reconciler)
    assert runs(store) == ["hourly-20261201-0100", "hourly-20261201-0200", "hourly-20261201-0300"]
    service.set_paused("hourly", True)
    clock.now = T0 + 6 * 3600 + 5
    tick(store, reconciler)
    assert len(runs(store)) == 3 and store.get("PipelineSchedule", "hourly").state == "Paused"
    service.set_paused("hourly", False)  # resumed: from now on, not what was missed while paused
    tick(store, reconciler)
    assert len(runs(store)) == 3
    clock.now = T0 + 7 * 3600 + 5
    tick(store, reconciler)
    assert runs(store)[-1] == "hourly-20261201-0700"

    service.apply(PipelineSchedule(name="once", pipeline="flow", cron="30 * * * *",
                                   end=datetime.fromtimestamp(T0 + 8 * 3600, UTC)))  # fmt: skip
    clock.now = T0 + 10 * 3600
    tick(store, reconciler, "once")
    tick(store, reconciler, "once")
    assert store.get("PipelineSchedule", "once").state == "Ended"


def test_bad_schedules_are_refused(world: tuple) -> None:
    _, service, _, _ = world
    with pytest.raises(ValidationError, match="not a five-field cron expression"):
        PipelineSchedule(name="x", pipeline="flow", cron="61 * * * *")
    with pytest.raises(ValidationError, match="must be after start"):
        PipelineSchedule(name="x", pipeline="flow", cron="0 * * * *", start=datetime(2027, 1, 1, tzinfo=UTC),
                         end=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    from strato.errors import NotFound

    with pytest.raises(NotFound, match="nope"):
        service.apply(PipelineSchedule(name="x", pipeline="nope", cron="0 * * * *"))
