"""Drives each TrainingJob from its stored spec: start an attempt when capacity allows, follow its
phases and metrics through the log, enforce stop and ``max_runtime``, retry infrastructure failures,
and record why every state changed. Every step is idempotent and reads its facts from the store and
the compute backend, so a restarted control plane simply carries on (re-adoption)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strato.compute.base import CapacityUnavailable, ComputeBackend, TaskState, TaskStatus
from strato.errors import NotFound
from strato.jobs.logscan import LogScanner
from strato.jobs.states import JobState, Reason
from strato.jobs.task import artifact_prefix, build_task
from strato.specs.training_job import TrainingJob
from strato.store.artifacts import ArtifactStore
from strato.store.metadata import MetadataStore, MetricPoint, ResourceRecord
from strato.store.secrets import SecretBox

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
    clock: Callable[[], float] = time.time

    def backend_for(self, spec: TrainingJob) -> ComputeBackend:
        return self.backends[spec.compute or self.default_backend]


def log_tail(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    text = data.decode("utf-8", errors="replace").splitlines()
    return [line for line in text if not line.startswith("[strato] ")][-lines:]


class TrainingJobReconciler:
    kind = TrainingJob.KIND

    def __init__(self, ctx: JobContext):
        self.ctx = ctx

    def reconcile(self, record: ResourceRecord) -> None:
        spec = TrainingJob.model_validate(record.spec)
        state = JobState(record.state)
        status = json.loads(json.dumps(record.status))  # a private deep copy to edit
        if record.desired.get("delete"):
            self._delete(record, spec, state, status)
        elif state is JobState.PENDING:
            self._start(record, spec, status)
        elif state.has_task:
            self._observe(record, spec, state, status)
        else:
            self.ctx.store.update_status(record.uid, status, active=False)

    # Pending -> Starting ---------------------------------------------------------------------------
    def _start(self, record: ResourceRecord, spec: TrainingJob, status: dict[str, Any]) -> None:
        store, now = self.ctx.store, self.ctx.clock()
        if record.desired.get("stop"):
            store.update_status(
                record.uid,
                status,
                state=JobState.STOPPED,
                reason=Reason.STOP_REQUESTED,
                message="stopped before it started",
                active=False,
            )
            return
        attempt = int(status.get("attempt", 0)) + 1
        backend = self.ctx.backend_for(spec)
        task = build_task(
            name=record.name,
            uid=record.uid,
            spec=spec,
            attempt=attempt,
            artifact_url=self.ctx.artifact_url,
            artifact_options=self.ctx.artifact_options,
            secrets=self.ctx.secrets,
            log_max_bytes=self.ctx.log_max_bytes,
        )
        try:
            task_id = backend.submit(task)
        except CapacityUnavailable as wait:
            message = f"waiting for resources: {wait.message}"
            if status.get("message") != message:
                status["message"] = message
                store.update_status(record.uid, status, reason=Reason.WAITING_FOR_RESOURCES)
            return
        status.update(
            attempt=attempt,
            task_id=task_id,
            backend=backend.name,
            log_offset=0,
            attempt_started_at=now,
            started_at=status.get("started_at") or now,
            message=f"attempt {attempt} started as task {task_id}",
        )
        status.pop("stop_reason", None)
        status.setdefault("attempts", []).append({"attempt": attempt, "task_id": task_id, "started_at": now})
        store.update_status(
            record.uid, status, state=JobState.STARTING, reason=Reason.TASK_STARTED, message=status["message"]
        )

    # Starting / Running / Uploading / Stopping ------------------------------------------------------
    def _observe(self, record: ResourceRecord, spec: TrainingJob, state: JobState, status: dict[str, Any]) -> None:
        backend = self.ctx.backend_for(spec)
        task_id = status["task_id"]
        task = self._task_status(backend, task_id)
        if task.state.finished:
            self._finish(record, spec, state, status, backend, task)
            return
        phases = self._scan_logs(record, spec, backend, task_id, status)
        state = self._record_passed_phases(record, state, phases, status)
        before = json.dumps(status, sort_keys=True)
        new_state, reason, message = state, "", ""
        self._sample_usage(record, backend, task_id, status)

        if new_state is not JobState.STOPPING:
            stop_reason = self._stop_reason(record, spec, status)
            if stop_reason is not None:
                status["stop_reason"], status["message"] = stop_reason
                backend.stop(task_id, self.ctx.stop_grace)
                new_state, reason, message = JobState.STOPPING, stop_reason[0], stop_reason[1]
        if new_state is not state or json.dumps(status, sort_keys=True) != before:
            self.ctx.store.update_status(record.uid, status, state=new_state, reason=reason, message=message)

    def _stop_reason(self, record: ResourceRecord, spec: TrainingJob, status: dict[str, Any]) -> tuple[str, str] | None:
        if record.desired.get("stop"):
            return Reason.STOP_REQUESTED, str(record.desired.get("stop_message") or "stop requested by the user")
        if spec.max_runtime is not None and self.ctx.clock() - float(status["started_at"]) > spec.max_runtime:
            return Reason.MAX_RUNTIME, f"ran longer than max_runtime ({spec.max_runtime:g}s) and was stopped"
        return None

    @staticmethod
    def _task_status(backend: ComputeBackend, task_id: str) -> TaskStatus:
        try:
            return backend.status(task_id)
        except NotFound:
            return TaskStatus(
                task_id, TaskState.LOST, message=f"task {task_id} is unknown to the {backend.name} backend"
            )

    def _scan_logs(
        self, record: ResourceRecord, spec: TrainingJob, backend: ComputeBackend, task_id: str, status: dict[str, Any]
    ) -> list[str]:
        offset = int(status.get("log_offset", 0))
        chunk = backend.logs(task_id, offset)
        consumed, phases = self._apply_log(record, spec, chunk.data, status, final=False)
        status["log_offset"] = offset + consumed
        return phases

    def _apply_log(
        self, record: ResourceRecord, spec: TrainingJob, data: bytes, status: dict[str, Any], *, final: bool
    ) -> tuple[int, list[str]]:
        """Record what new log lines say (metrics, failure reason); return bytes consumed and phases."""
        if not data:
            return 0, []
        result = LogScanner([(m.name, m.regex) for m in spec.metric_definitions]).scan(data, final=final)
        if result.metrics:
            now = self.ctx.clock()
            self.ctx.store.add_metrics(record.uid, [MetricPoint(n, v, s, now) for n, v, s in result.metrics])
            summary = status.setdefault("metrics", {})
            for name, value, _ in result.metrics:
                summary[name] = value
        if result.failure_reason is not None:
            status["failure_reason"] = result.failure_reason
        return result.consumed, result.phases

    def _sample_usage(
        self, record: ResourceRecord, backend: ComputeBackend, task_id: str, status: dict[str, Any]
    ) -> None:
        now = self.ctx.clock()
        if now - float(status.get("usage_at", 0)) < USAGE_EVERY:
            return
        sample = backend.usage(task_id)
        if sample is None:
            return
        status["usage_at"] = now
        usage = status.setdefault("usage", {})
        usage["peak_memory"] = max(int(usage.get("peak_memory", 0)), sample.peak_memory)
        usage["max_cpu_percent"] = max(float(usage.get("max_cpu_percent", 0.0)), sample.cpu_percent)
        self.ctx.store.add_metrics(
            record.uid,
            [
                MetricPoint("system/cpu_percent", sample.cpu_percent, None, now),
                MetricPoint("system/memory_bytes", float(sample.memory), None, now),
            ],
        )

    # An attempt ended ------------------------------------------------------------------------------
    def _finish(
        self,
        record: ResourceRecord,
        spec: TrainingJob,
        state: JobState,
        status: dict[str, Any],
        backend: ComputeBackend,
        task: TaskStatus,
    ) -> None:
        store, now = self.ctx.store, self.ctx.clock()
        attempt = int(status["attempt"])
        prefix = artifact_prefix(record.name, record.uid)
        data = self._read_all_logs(backend, task.task_id)
        offset = int(status.get("log_offset", 0))
        status["log_offset"] = len(data)
        _, phases = self._apply_log(record, spec, data[offset:], status, final=True)
        self._record_passed_phases(record, state, phases, status)
        log_path = f"{prefix}/attempt-{attempt}/log.txt"
        self.ctx.artifacts.put_bytes(log_path, data)
        status["log_uri"] = self.ctx.artifacts.uri(log_path)
        tail = log_tail(data)

        usage = status.setdefault("usage", {})
        if task.peak_memory is not None:
            usage["peak_memory"] = max(int(usage.get("peak_memory", 0)), task.peak_memory)
        if task.cpu_seconds is not None:
            usage["cpu_seconds"] = float(usage.get("cpu_seconds", 0.0)) + task.cpu_seconds
        outcome = (
            "Succeeded" if task.state is TaskState.SUCCEEDED else ("Lost" if task.state is TaskState.LOST else "Failed")
        )
        record_of = next((a for a in status.get("attempts", []) if a.get("attempt") == attempt), None)
        if record_of is not None:
            record_of.update(
                ended_at=task.ended_at or now, exit_code=task.exit_code, outcome=outcome, message=task.message
            )
        status.update(exit_code=task.exit_code, ended_at=task.ended_at or now)
        status.pop("task_id", None)
        for name in ("model", "output", "checkpoints"):
            if self.ctx.artifacts.list(f"{prefix}/{name}"):
                status[f"{name}_uri"] = self.ctx.artifacts.uri(f"{prefix}/{name}")

        new_state, reason, message = self._outcome(spec, status, task, attempt, tail)
        if new_state is JobState.PENDING:
            status.pop("ended_at", None)
        else:
            status["log_tail"] = tail
        status["message"] = message
        store.update_status(
            record.uid, status, state=new_state, reason=reason, message=message, active=not new_state.terminal
        )
        backend.release(task.task_id)

    def _record_passed_phases(
        self, record: ResourceRecord, state: JobState, phases: list[str], status: dict[str, Any]
    ) -> JobState:
        """Every phase the task reached since the last pass enters the history, in order; returns the
        state reached. Phases never move a job backwards or out of Stopping."""
        for phase in phases:
            target = PHASES.get(phase)
            if target and state is not JobState.STOPPING and PHASE_ORDER.index(target) > PHASE_ORDER.index(state):
                self.ctx.store.update_status(record.uid, status, state=target, reason=Reason.PHASE, message=phase)
                state = target
        return state

    def _outcome(
        self, spec: TrainingJob, status: dict[str, Any], task: TaskStatus, attempt: int, tail: list[str]
    ) -> tuple[JobState, str, str]:
        if status.get("stop_reason"):
            return JobState.STOPPED, str(status["stop_reason"]), str(status.get("message", "stopped"))
        if task.state is TaskState.SUCCEEDED:
            return JobState.COMPLETED, Reason.COMPLETED, "training job completed"
        lost = task.state is TaskState.LOST
        why = task.message if lost else f"exit code {task.exit_code}"
        if (lost or task.exit_code in spec.retry.exit_codes) and attempt < spec.retry.max_attempts:
            return (
                JobState.PENDING,
                Reason.RETRYING,
                (f"attempt {attempt} ended ({why}); retrying as attempt {attempt + 1} of {spec.retry.max_attempts}"),
            )
        reason = Reason.PROCESS_LOST if lost else Reason.ALGORITHM_ERROR
        detail = status.get("failure_reason") or why
        last = "\n".join(tail[-5:])
        message = (
            f"{detail}"
            if lost
            else f"user code failed with {why}: {detail}"
            if detail != why
            else f"user code failed with {why}"
        )
        if last:
            message += f"; last log lines:\n{last}"
        return JobState.FAILED, reason, message

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
    def _delete(self, record: ResourceRecord, spec: TrainingJob, state: JobState, status: dict[str, Any]) -> None:
        task_id = status.get("task_id")
        if task_id and state.has_task:
            backend = self.ctx.backend_for(spec)
            task = self._task_status(backend, task_id)
            if not task.state.finished:
                if state is not JobState.STOPPING:
                    backend.stop(task_id, self.ctx.stop_grace)
                    status["stop_reason"] = Reason.STOP_REQUESTED
                    self.ctx.store.update_status(
                        record.uid,
                        status,
                        state=JobState.STOPPING,
                        reason=Reason.STOP_REQUESTED,
                        message="deleting: stopping the task",
                    )
                return
            backend.release(task_id)
        # Artifacts (model, outputs, logs) are kept: deleting a job record must not lose a model.
        self.ctx.store.delete(record.uid)
