"""Cron schedules of pipelines: at each due time a ``PipelineRun`` is created (named after the schedule
and the due time, so a restart never doubles one), within the schedule's window, up to ``max_concurrent``
runs at once (a due run beyond that is skipped and recorded), missed times started only with
``catch_up``. Pausing stops new runs; resuming starts from now."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strato.errors import AlreadyExists, InvalidArgument, NotFound, StratoError
from strato.pipelines.service import TERMINAL, PipelineRunService
from strato.specs.pipeline_run import PipelineRun
from strato.specs.pipeline_schedule import PipelineSchedule
from strato.store.metadata import MetadataStore, ResourceRecord, Transition

KIND = PipelineSchedule.KIND
LABEL = "strato.schedule"
MAX_CATCH_UP = 20  # runs started at once after a long outage
KEPT = 20  # fired and skipped times remembered in the status


def due_times(spec: PipelineSchedule, after: float, now: float) -> list[float]:
    """Cron times in (after, now], inside the schedule's window."""
    from croniter import croniter

    start = max(after, spec.start.timestamp() if spec.start else after)
    times: list[float] = []
    it = croniter(spec.cron, datetime.fromtimestamp(start, UTC))
    while True:
        at = float(it.get_next(float))
        if at > now or (spec.end is not None and at > spec.end.timestamp()):
            return times
        times.append(at)
        if len(times) > 10_000:  # a per-minute schedule after a very long outage: keep the newest
            times = times[-MAX_CATCH_UP:]


class ScheduleService:
    def __init__(self, store: MetadataStore, runs: PipelineRunService, clock: Callable[[], float] = time.time):
        self.store, self.runs, self.clock = store, runs, clock

    def apply(self, spec: PipelineSchedule) -> tuple[ResourceRecord, bool]:
        self.store.get("Pipeline", spec.pipeline)  # a clear NotFound
        data = spec.model_dump(mode="json")
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            record = self.store.create(KIND, spec.name, data, state="Paused" if spec.paused else "Active",
                                       reason="Created", message=f"cron {spec.cron}",
                                       status={"last_due": self.clock()}, active=not spec.paused)  # fmt: skip
            return record, True
        if PipelineSchedule.model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        status = dict(existing.status)
        if not spec.paused and existing.spec.get("paused"):
            status["last_due"] = self.clock()  # resumed: from now on, not the times missed while paused
        record = self.store.replace_spec(existing.uid, data, status)
        self.store.update_status(record.uid, status, Transition("Paused" if spec.paused else "Active", "Changed", ""),
                                 active=not spec.paused)  # fmt: skip
        return self.store.get_by_uid(record.uid), False

    def set_paused(self, name: str, paused: bool) -> ResourceRecord:
        record = self.get(name)
        spec = PipelineSchedule.model_validate({**record.spec, "paused": paused})
        return self.apply(spec)[0]

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def delete(self, name: str) -> None:
        self.store.delete(self.get(name).uid)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()


class ScheduleReconciler:
    kind = KIND

    def __init__(self, service: ScheduleService):
        self.service = service

    def begin_pass(self) -> None:
        pass

    def reconcile(self, record: ResourceRecord) -> None:
        spec = PipelineSchedule.model_validate(record.spec)
        if spec.paused:
            return
        now = self.service.clock()
        status = dict(record.status)
        due = due_times(spec, float(status.get("last_due", record.created_at)), now)
        if not due:
            if spec.end is not None and now > spec.end.timestamp():
                ended = Transition("Ended", "WindowOver", "the schedule's end has passed")
                self.service.store.update_status(record.uid, status, ended, active=False)
            return
        if not spec.catch_up:
            due = due[-1:]  # only the latest missed time
        fired, skipped = list(status.get("fired", [])), list(status.get("skipped", []))
        for at in due[-MAX_CATCH_UP:]:
            running = [r for r in self.service.store.list(PipelineRun.KIND)
                       if (r.spec.get("labels") or {}).get(LABEL) == spec.name and r.state not in TERMINAL]  # fmt: skip
            stamp = datetime.fromtimestamp(at, UTC).strftime("%Y%m%d-%H%M")
            if len(running) >= spec.max_concurrent:
                skipped.append({"due": at, "reason": f"{len(running)} run(s) still running (max_concurrent "
                                                     f"{spec.max_concurrent})"})  # fmt: skip
                continue
            name = f"{spec.name[:40]}-{stamp}"
            run = PipelineRun(name=name, pipeline=spec.pipeline, parameters=spec.parameters,
                              labels={LABEL: spec.name})  # fmt: skip
            try:
                self.service.runs.apply(run)
            except AlreadyExists:
                pass
            except (InvalidArgument, StratoError) as exc:
                skipped.append({"due": at, "reason": exc.message})
                continue
            fired.append({"due": at, "run": name})
        status.update(last_due=due[-1], fired=fired[-KEPT:], skipped=skipped[-KEPT:])
        self.service.store.update_status(record.uid, status)
