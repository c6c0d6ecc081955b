"""Drives each TrainingJob from its stored spec: start an attempt when capacity allows, follow its
phases and metrics through the log, enforce stop and ``max_runtime``, retry infrastructure failures,
and record why every state changed. Every step is idempotent and reads its facts from the store and
the compute backend, so a restarted control plane simply carries on (re-adoption).

Each call writes at most one transaction: the new status, the states passed through and the metric
points it found (``Step``), which keeps the single reconcile thread fast under load.

A distributed job (``instance_count`` > 1) runs one task per worker, started together with
``submit_gang`` and followed as one attempt (``jobs/gang.py``): rank 0's log moves the phases and
carries the metrics and checkpoints (only rank 0 syncs them; per-rank metrics would repeat the same
names), every worker's log is stored apart, a failure, loss, stop or interruption of one worker ends
them all, and the whole gang restarts under the job's retry or spot recovery policy. Status keeps
``task_id`` (rank 0, as for single-worker jobs) and ``task_ids`` (every worker, in rank order).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strato.compute.base import CapacityUnavailable, ComputeBackend, TaskSpec, TaskState, TaskStatus
from strato.errors import NotFound
from strato.jobs import gang
from strato.jobs.environment import Cluster
from strato.jobs.logscan import LogScanner
from strato.jobs.recovery import STRATEGIES
from strato.jobs.spot import (
    advice,
    goodput,
    next_interruption,
    notice_seconds,
    progress_lost,
    record_checkpoint,
    spot_environment,
)
from strato.jobs.states import JobState, Reason
from strato.jobs.task import artifact_prefix, build_task
from strato.lake.tables import LakeTables
from strato.specs import labels
from strato.specs.spot import RecoveryPolicy
from strato.specs.training_job import TrainingJob
from strato.store.artifacts import ArtifactStore
from strato.store.metadata import MetadataStore, MetricPoint, ResourceRecord, Transition
from strato.store.secrets import SecretBox
from strato.tracking.tracker import Tracker, TrackingUnavailable

log = logging.getLogger("strato.jobs")

PHASES = {"Starting": JobState.STARTING, "Running": JobState.RUNNING, "Uploading": JobState.UPLOADING}
PHASE_ORDER = [JobState.STARTING, JobState.RUNNING, JobState.UPLOADING]
TAIL_LINES = 20
USAGE_EVERY = 5.0  # seconds between stored usage samples of a running job


@dataclass
class JobContext:
    store: MetadataStore
    artifacts: ArtifactStore
    backends: dict[str, ComputeBackend]
    default_backend: str
    secrets: SecretBox
    artifact_url: str
    artifact_options: dict[str, Any]
    stop_grace: float = 10.0
    log_max_bytes: int | None = None
    tracker: Tracker | None = None  # None: tracking is off (no MLflow runs)
    clock: Callable[[], float] = time.time
    lake: LakeTables | None = None  # resolves lake:// inputs (None: they are refused)

    def backend_for(self, spec: TrainingJob) -> ComputeBackend:
        return self.backends[spec.compute or self.default_backend]


@dataclass
class Step:
    """What one reconcile call observed, written in one transaction by ``commit``."""

    record: ResourceRecord
    status: dict[str, Any]
    state: JobState
    transitions: list[Transition] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    release: Callable[[], None] | None = None  # frees the ended tasks once the outcome is stored

    def move(self, state: JobState, reason: str, message: str = "", at: float | None = None) -> None:
        if state is not self.state:
            self.transitions.append(Transition(state, reason, message, at))
            self.state = state

    @property
    def changed(self) -> bool:
        return bool(self.transitions or self.metrics) or self.status != self.record.status


def log_tail(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    text = data.decode("utf-8", errors="replace").splitlines()
    return [line for line in text if not line.startswith("[strato] ")][-lines:]


class TrainingJobReconciler:
    kind = TrainingJob.KIND

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self._full: set[str] = set()  # backends that refused a task in this pass

    def begin_pass(self) -> None:
        """Capacity is granted strictly in submission order: once a job waits, later ones wait too,
        so a big job is never overtaken forever by small ones (and a long queue costs one try a pass)."""
        self._full.clear()

    def reconcile(self, record: ResourceRecord) -> None:
        spec = TrainingJob.model_validate(record.spec)
        step = Step(record, copy.deepcopy(record.status), JobState(record.state))
        if record.desired.get("delete"):
            self._delete(step, spec)
            return
        if step.state is JobState.PENDING:
            self._start(step, spec)
        elif step.state.has_task:
            self._observe(step, spec)
        self._commit(step)
        if step.release is not None:
            step.release()

    def _commit(self, step: Step) -> None:
        if step.changed or step.state.terminal:
            self.ctx.store.update_status(
                step.record.uid, step.status, *step.transitions, active=not step.state.terminal, metrics=step.metrics
            )

    # Pending -> Starting ---------------------------------------------------------------------------
    def _start(self, step: Step, spec: TrainingJob) -> None:
        if step.record.desired.get("stop"):
            step.status["message"] = "stopped before it started"
            step.move(JobState.STOPPED, Reason.STOP_REQUESTED, step.status["message"])
            return
        if not self._may_start(step, spec):
            return
        backend = self.ctx.backend_for(spec)
        if backend.name in self._full:
            step.status["message"] = "waiting for resources: queued behind earlier jobs"
            return
        tracking = self._tracking(step, spec)
        if tracking is None:
            return
        attempt = int(step.status.get("attempt", 0)) + 1
        try:
            task_ids = backend.submit_gang(self._gang_tasks(step, spec, backend, attempt, tracking))
        except CapacityUnavailable as wait:
            self._full.add(backend.name)
            step.status["message"] = f"waiting for resources: {wait.message}"
            return
        now = self.ctx.clock()
        started = f"task {task_ids[0]}" if len(task_ids) == 1 else f"{len(task_ids)} workers: {', '.join(task_ids)}"
        step.status.update(
            attempt=attempt,
            task_id=task_ids[0],
            task_ids=task_ids,
            backend=backend.name,
            log_offset=0,
            attempt_started_at=now,
            started_at=step.status.get("started_at") or now,
            message=f"attempt {attempt} started as {started}",
        )
        step.status.pop("stop_reason", None)
        step.status.pop("not_before", None)
        step.status.pop("gang_broken", None)
        entry = {"attempt": attempt, "task_id": task_ids[0], "started_at": now}
        if len(task_ids) > 1:
            entry["task_ids"] = task_ids
        step.status.setdefault("attempts", []).append(entry)
        if spec.spot is not None and spec.spot.enabled:
            spot_state = step.status.setdefault("spot", {"interruptions": 0})
            spot_state.pop("interrupted_at", None)
            spot_state["next_interruption_at"] = next_interruption(
                spec.spot.interruptions,
                job_started_at=float(step.status["started_at"]),
                attempt_started_at=now,
                attempt=attempt,
                interruptions=int(spot_state["interruptions"]),
            )
        step.move(JobState.STARTING, Reason.TASK_STARTED, step.status["message"], now)

    def _tracking(self, step: Step, spec: TrainingJob) -> tuple[dict[str, str], dict[str, str]] | None:
        """The environment that points the job at its MLflow run (created on the first start); None
        while the tracking server cannot take it (the job waits: every job is a run)."""
        tracker = self.ctx.tracker
        if tracker is None:
            return {}, {}
        try:
            run = tracker.ensure_run(
                step.record,
                experiment=spec.experiment or "Default",
                params=spec.hyperparameters,
                parent_uid=spec.labels.get(labels.TUNING_UID),
            )
        except TrackingUnavailable as wait:
            step.status["message"] = wait.message
            return None
        step.status["tracking"] = {"run_id": run.run_id, "experiment_id": run.experiment_id}
        return tracker.task_environment(run)

    def _gang_tasks(
        self,
        step: Step,
        spec: TrainingJob,
        backend: ComputeBackend,
        attempt: int,
        tracking: tuple[dict[str, str], dict[str, str]],
    ) -> list[TaskSpec]:
        """One task per worker, each told its rank; a new meeting port per attempt, so a restarted gang
        never waits on a port its predecessor held."""
        count = spec.instance_count
        addr, ports = backend.rendezvous(count) if count > 1 or spec.distribution == "torch" else ("127.0.0.1", [])
        extra_env = {**spot_environment(spec.spot, step.status), **tracking[0]}
        return [
            build_task(
                name=step.record.name,
                uid=step.record.uid,
                spec=spec,
                attempt=attempt,
                artifact_url=self.ctx.artifact_url,
                artifact_options=self.ctx.artifact_options,
                secrets=self.ctx.secrets,
                log_max_bytes=self.ctx.log_max_bytes,
                extra_env=extra_env,
                extra_secret_env=tracking[1],
                cluster=Cluster(rank, count, spec.distribution, addr, ports, attempt - 1, step.record.uid),
                lake_url=self.ctx.lake.root if self.ctx.lake is not None else None,
            )
            for rank in range(count)
        ]

    def _may_start(self, step: Step, spec: TrainingJob) -> bool:
        """False while a restart waits out its delay; a job past ``spot.max_wait`` stops instead."""
        now = self.ctx.clock()
        wait_reason = self._max_wait_reason(step, spec)
        if wait_reason is not None:
            step.status["message"] = wait_reason[1]
            step.move(JobState.STOPPED, *wait_reason)
            return False
        not_before = step.status.get("not_before")
        if not_before is not None and now < float(not_before):
            step.status["message"] = f"restarting in {float(not_before) - now:.0f}s after a spot interruption"
            return False
        return True

    def _max_wait_reason(self, step: Step, spec: TrainingJob) -> tuple[str, str] | None:
        if spec.spot is None or spec.spot.max_wait is None:
            return None
        if self.ctx.clock() - step.record.created_at > spec.spot.max_wait:
            return Reason.MAX_WAIT, f"ran past spot.max_wait ({spec.spot.max_wait:g}s, waits and restarts included)"
        return None

    # Starting / Running / Uploading / Interrupted / Stopping ---------------------------------------
    def _observe(self, step: Step, spec: TrainingJob) -> None:
        backend = self.ctx.backend_for(spec)
        task_ids = gang.task_ids(step.status)
        tasks = [self._task_status(backend, task_id) for task_id in task_ids]
        if all(task.state.finished for task in tasks):
            self._finish(step, spec, backend, tasks)
            return
        running = [task.task_id for task in tasks if not task.state.finished]
        offset = int(step.status.get("log_offset", 0))
        try:
            data = backend.logs(task_ids[0], offset).data  # rank 0 speaks for the job
        except NotFound:
            data = b""  # rank 0 vanished: the gang is being stopped below
        step.status["log_offset"] = offset + self._read_log(step, spec, data, final=False)
        self._sample_usage(step, backend, running)
        if step.state not in (JobState.STOPPING, JobState.INTERRUPTED):
            self._break_gang(step, backend, tasks)
            self._maybe_interrupt(step, spec, backend, running)
        if step.state is not JobState.STOPPING:
            stop = self._stop_reason(step, spec)
            if stop is not None:
                step.status["stop_reason"], step.status["message"] = stop
                for task_id in running:
                    backend.stop(task_id, self.ctx.stop_grace)
                step.move(JobState.STOPPING, *stop)

    def _break_gang(self, step: Step, backend: ComputeBackend, tasks: list[TaskStatus]) -> None:
        """One worker ended badly while others run: stop them at once (SIGTERM, then SIGKILL after the
        stop grace; rank 0's runner still syncs what its code saved). Which worker broke the gang is
        kept, since the outcome of the attempt is its outcome."""
        broke = gang.breaker(tasks)
        if broke is None or "gang_broken" in step.status:
            return
        task = tasks[broke]
        why = task.message or f"exit code {task.exit_code}"
        others = [t.task_id for t in tasks if not t.state.finished]
        step.status["gang_broken"] = broke
        step.status["message"] = f"worker {broke} ended ({why}); stopping the other {len(others)} worker(s)"
        for task_id in others:
            backend.stop(task_id, self.ctx.stop_grace)

    def _stop_reason(self, step: Step, spec: TrainingJob) -> tuple[str, str] | None:
        desired = step.record.desired
        if desired.get("stop"):
            return Reason.STOP_REQUESTED, str(desired.get("stop_message") or "stop requested by the user")
        if spec.max_runtime is not None and self._runtime(step.status) > spec.max_runtime:
            return Reason.MAX_RUNTIME, f"ran longer than max_runtime ({spec.max_runtime:g}s) and was stopped"
        return self._max_wait_reason(step, spec)

    def _runtime(self, status: dict[str, Any]) -> float:
        """Seconds the job has run, over all attempts (waits between them do not count; max_wait does)."""
        done = sum(
            float(a["ended_at"]) - float(a["started_at"]) for a in status.get("attempts", []) if a.get("ended_at")
        )
        return done + self.ctx.clock() - float(status.get("attempt_started_at") or status["started_at"])

    def _maybe_interrupt(self, step: Step, spec: TrainingJob, backend: ComputeBackend, running: list[str]) -> None:
        """Deliver a spot interruption when the schedule says so, or when the user asked for one.

        A gang is interrupted as one: every worker gets the notice. On a cloud, the reclaim of one
        instance ends a synchronous gang anyway; telling them all lets rank 0, the one that saves
        checkpoints, save at the notice whichever instance was reclaimed."""
        asked = int(step.record.desired.get("interrupt", 0))
        spot_state = step.status.setdefault("spot", {"interruptions": 0})
        manual = asked > int(spot_state.get("manual", 0))
        due = spot_state.get("next_interruption_at")
        scheduled = spec.spot is not None and spec.spot.enabled and due is not None and self.ctx.clock() >= due
        if not (manual or scheduled):
            return
        notice = notice_seconds(spec.spot) if spec.spot else float(step.record.desired.get("interrupt_notice", 30))
        if manual and step.record.desired.get("interrupt_notice") is not None:
            notice = float(step.record.desired["interrupt_notice"])
        now = self.ctx.clock()
        spot_state.update(manual=asked, interrupted_at=now, interruptions=int(spot_state["interruptions"]) + 1)
        spot_state.pop("next_interruption_at", None)
        for task_id in running:
            backend.interrupt(task_id, notice)
        how = "by hand" if manual else "by the simulated spot market"
        step.status["message"] = f"spot interruption {how}: {notice:g}s notice, then the task is killed"
        step.move(JobState.INTERRUPTED, Reason.SPOT_INTERRUPTION, step.status["message"], now)

    @staticmethod
    def _task_status(backend: ComputeBackend, task_id: str) -> TaskStatus:
        try:
            return backend.status(task_id)
        except NotFound:
            return TaskStatus(
                task_id, TaskState.LOST, message=f"task {task_id} is unknown to the {backend.name} backend"
            )

    def _read_log(self, step: Step, spec: TrainingJob, data: bytes, *, final: bool) -> int:
        """Take what new log lines say (phases, metrics, failure reason) into ``step``; returns the
        bytes consumed (complete lines only, unless ``final``)."""
        if not data:
            return 0
        result = LogScanner([(m.name, m.regex) for m in spec.metric_definitions]).scan(data, final=final)
        now = self.ctx.clock()
        step.metrics += [MetricPoint(name, value, s, now) for name, value, s in result.metrics]
        if result.metrics:
            summary = step.status.setdefault("metrics", {})
            for name, value, _ in result.metrics:
                summary[name] = value
        if result.failure_reason is not None:
            step.status["failure_reason"] = result.failure_reason
        for saved in result.checkpoints:
            record_checkpoint(step.status, saved)
        for phase, at in result.phases:
            target = PHASES.get(phase)
            # Phases only move a job forward, and never out of Stopping.
            if target and step.state in PHASE_ORDER and PHASE_ORDER.index(target) > PHASE_ORDER.index(step.state):
                step.move(target, Reason.PHASE, phase, at)
            if target is JobState.RUNNING:
                step.status["attempt_running_at"] = at or self.ctx.clock()
        return result.consumed

    def _sample_usage(self, step: Step, backend: ComputeBackend, running: list[str]) -> None:
        """Usage of the whole job: CPU and memory summed over its running workers; the peak memory
        is the largest of one worker (what each machine must hold)."""
        now = self.ctx.clock()
        if now - float(step.status.get("usage_at", 0)) < USAGE_EVERY:
            return
        samples = []
        for task_id in running:
            try:
                sample = backend.usage(task_id)
            except NotFound:
                continue
            if sample is not None:
                samples.append(sample)
        if not samples:
            return
        step.status["usage_at"] = now
        usage = step.status.setdefault("usage", {})
        cpu_percent = sum(sample.cpu_percent for sample in samples)
        usage["peak_memory"] = max(int(usage.get("peak_memory", 0)), *(sample.peak_memory for sample in samples))
        usage["max_cpu_percent"] = max(float(usage.get("max_cpu_percent", 0.0)), cpu_percent)
        step.metrics += [
            MetricPoint("system/cpu_percent", cpu_percent, None, now),
            MetricPoint("system/memory_bytes", float(sum(sample.memory for sample in samples)), None, now),
        ]

    # An attempt ended ------------------------------------------------------------------------------
    def _finish(self, step: Step, spec: TrainingJob, backend: ComputeBackend, tasks: list[TaskStatus]) -> None:
        """Every worker of the attempt has ended: store their logs, record the attempt's outcome (that
        of the worker that broke the gang, if one did) and decide what comes next."""
        status, now = step.status, self.ctx.clock()
        attempt = int(status["attempt"])
        prefix = artifact_prefix(step.record.name, step.record.uid)
        logs = [self._read_all_logs(backend, task.task_id) for task in tasks]
        data = logs[0]
        self._read_log(step, spec, data[int(status.get("log_offset", 0)) :], final=True)
        status["log_offset"] = len(data)
        log_path = f"{prefix}/attempt-{attempt}/log.txt"  # rank 0's: where a single-worker job's log is
        self.ctx.artifacts.put_bytes(log_path, data)
        status["log_uri"] = self.ctx.artifacts.uri(log_path)
        task, rank = gang.outcome(tasks, status.pop("gang_broken", None))
        on = ""
        if len(tasks) > 1:
            on = f" on worker {rank}"
            status["worker_log_uris"] = []
            for number, worker_log in enumerate(logs):
                path = f"{prefix}/attempt-{attempt}/worker-{number}/log.txt"
                self.ctx.artifacts.put_bytes(path, worker_log)
                status["worker_log_uris"].append(self.ctx.artifacts.uri(path))
        if rank:  # the attempt ended as another worker than rank 0 did: its log says why
            status.pop("failure_reason", None)
            reason = LogScanner([]).scan(logs[rank], final=True).failure_reason
            if reason is not None:
                status["failure_reason"] = reason

        usage = status.setdefault("usage", {})
        if task.peak_memory is not None:
            usage["peak_memory"] = max(int(usage.get("peak_memory", 0)), task.peak_memory)
        if task.cpu_seconds is not None:
            usage["cpu_seconds"] = float(usage.get("cpu_seconds", 0.0)) + task.cpu_seconds
        interrupted = step.state is JobState.INTERRUPTED and task.state is not TaskState.SUCCEEDED
        outcome = {TaskState.SUCCEEDED: "Succeeded", TaskState.LOST: "Lost"}.get(task.state, "Failed")
        if interrupted:
            outcome = "Interrupted"
        elif task.stopped or status.get("stop_reason"):
            outcome = "Stopped"
        ended_at = task.ended_at or now
        for entry in status.get("attempts", []):
            if entry.get("attempt") == attempt:
                entry.update(ended_at=ended_at, exit_code=task.exit_code, outcome=outcome, message=task.message)
                if len(tasks) > 1:
                    entry["workers"] = [
                        {
                            "rank": n,
                            "task_id": t.task_id,
                            "state": str(t.state),
                            "exit_code": t.exit_code,
                            "stopped": t.stopped,
                            "message": t.message,
                        }
                        for n, t in enumerate(tasks)
                    ]
                if outcome in ("Interrupted", "Lost"):
                    entry["progress_lost"] = progress_lost(status, entry, ended_at)
        status["goodput"] = goodput(status.get("attempts", []))
        spot_advice = advice(spec.spot, status)
        if spot_advice is not None:
            status["advice"] = spot_advice
        status.update(exit_code=task.exit_code, ended_at=ended_at)
        status.pop("attempt_running_at", None)
        status.pop("task_id", None)
        status.pop("task_ids", None)
        for name in ("model", "output", "checkpoints"):
            if self.ctx.artifacts.list(f"{prefix}/{name}"):
                status[f"{name}_uri"] = self.ctx.artifacts.uri(f"{prefix}/{name}")

        tail = log_tail(logs[rank])
        if interrupted:
            state, reason, message = self._after_interruption(spec, status)
        else:
            state, reason, message = self._outcome(spec, status, task, attempt, tail, on)
        if state is JobState.PENDING:
            status.pop("ended_at", None)
        else:
            status["log_tail"] = tail
        status["message"] = message
        step.move(state, reason, message, None if state is JobState.PENDING else task.ended_at)
        step.release = lambda: self._release(backend, [t.task_id for t in tasks])

    def _after_interruption(self, spec: TrainingJob, status: dict[str, Any]) -> tuple[JobState, str, str]:
        """The recovery strategy decides: restart (now or after a delay) or give up."""
        spot_state = status.setdefault("spot", {"interruptions": 1})
        policy = spec.spot.recovery if spec.spot else RecoveryPolicy()
        decision = STRATEGIES.get(policy.strategy)(int(spot_state["interruptions"]), policy)
        lost = float(status["attempts"][-1].get("progress_lost", 0.0))
        if not status.get("checkpoint"):
            warning = (
                "this spot job saved no checkpoint, so every interruption restarts it from the beginning; "
                "write checkpoints to $STRATO_CHECKPOINT_DIR (strato.runtime.checkpoint())"
            )
            if warning not in status.setdefault("warnings", []):
                status["warnings"].append(warning)
        if not decision.restart:
            return (
                JobState.FAILED,
                Reason.MAX_INTERRUPTIONS,
                f"spot interruption lost {lost:.1f}s of work; {decision.reason}",
            )
        if decision.delay:
            status["not_before"] = self.ctx.clock() + decision.delay
        return (
            JobState.PENDING,
            Reason.SPOT_INTERRUPTION,
            f"spot interruption lost {lost:.1f}s of work; {decision.reason}",
        )

    def _outcome(
        self, spec: TrainingJob, status: dict[str, Any], task: TaskStatus, attempt: int, tail: list[str], on: str = ""
    ) -> tuple[JobState, str, str]:
        """``on`` names the worker the outcome is of (" on worker 1"), for a distributed job."""
        if status.get("stop_reason"):
            return JobState.STOPPED, str(status["stop_reason"]), str(status.get("message", "stopped"))
        if task.state is TaskState.SUCCEEDED:
            return JobState.COMPLETED, Reason.COMPLETED, "training job completed"
        lost = task.state is TaskState.LOST
        why = task.message if lost else f"exit code {task.exit_code}{on}"
        if (lost or task.exit_code in spec.retry.exit_codes) and attempt < spec.retry.max_attempts:
            return (
                JobState.PENDING,
                Reason.RETRYING,
                f"attempt {attempt} ended ({why}); retrying as attempt {attempt + 1} of {spec.retry.max_attempts}",
            )
        if lost:
            message, reason = why, Reason.PROCESS_LOST
        else:
            detail = status.get("failure_reason")
            message = f"user code failed with {why}" + (f": {detail}" if detail else "")
            reason = Reason.ALGORITHM_ERROR
        last = "\n".join(tail[-5:])
        return JobState.FAILED, reason, message + (f"; last log lines:\n{last}" if last else "")

    @staticmethod
    def _release(backend: ComputeBackend, task_ids: list[str]) -> None:
        for task_id in task_ids:
            backend.release(task_id)

    @staticmethod
    def _read_all_logs(backend: ComputeBackend, task_id: str) -> bytes:
        parts, offset = [], 0
        while True:
            try:
                chunk = backend.logs(task_id, offset)
            except NotFound:
                break
            parts.append(chunk.data)
            offset = chunk.next_offset
            if chunk.complete or not chunk.data:
                break
        return b"".join(parts)

    # Delete ----------------------------------------------------------------------------------------
    def _delete(self, step: Step, spec: TrainingJob) -> None:
        task_ids = gang.task_ids(step.status)
        if task_ids and step.state.has_task:
            backend = self.ctx.backend_for(spec)
            running = [t for t in task_ids if not self._task_status(backend, t).state.finished]
            if running:
                if step.state is not JobState.STOPPING:
                    for task_id in running:
                        backend.stop(task_id, self.ctx.stop_grace)
                    step.status["stop_reason"] = Reason.STOP_REQUESTED
                    step.move(JobState.STOPPING, Reason.STOP_REQUESTED, "deleting: stopping the task")
                    self._commit(step)
                return
            self._release(backend, task_ids)
        # Artifacts (model, outputs, logs) are kept: deleting a job record must not lose a model.
        self.ctx.store.delete(step.record.uid)
