"""Drives each ``BatchTransformJob``: resolve the model once, start one worker task per
``workers`` (``python -m strato.batch.worker``, each scoring every N-th part), follow their progress,
restart a worker that failed (it skips the parts already written, so no row is scored twice), and end
Completed with the totals, or Failed naming the worker's reason once its attempts are spent.

The status keeps what a cost record needs: each worker attempt's start and end, its CPU seconds and
the resources it held (``billed_seconds`` = wall time x workers, as for any job).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.compute.base import CapacityUnavailable, ComputeBackend, TaskResources, TaskSpec, TaskState
from strato.errors import NotFound, StratoError
from strato.jobs.logscan import last_failure_reason
from strato.lake.tables import LakeTables, parse_uri
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.specs.batch_transform import BatchTransformJob
from strato.store.metadata import MetadataStore, ResourceRecord, Transition

KIND = BatchTransformJob.KIND
STOP_GRACE = 10.0


class BatchState:
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class BatchContext:
    store: MetadataStore
    backend: ComputeBackend
    resolve_model: Callable[[str], tuple[str, str | None]]
    model_env: Callable[[], tuple[dict[str, str], dict[str, str]]]
    cache_dir: Path
    default_output: Callable[[str], str]  # job name -> output directory
    passed_env: Callable[[], dict[str, str]] = dict
    clock: Callable[[], float] = time.time
    lake: LakeTables | None = None  # resolves lake:// inputs


def _as_delta(output: str) -> int:
    """Make the finished parts a Delta table in place (a log over the Parquet files already written)."""
    from deltalake import DeltaTable, convert_to_deltalake

    if not (Path(output) / "_delta_log").is_dir():
        convert_to_deltalake(output)
    return int(DeltaTable(output).version())


class BatchTransformReconciler:
    kind = KIND

    def __init__(self, ctx: BatchContext):
        self.ctx = ctx

    def begin_pass(self) -> None:
        pass

    def reconcile(self, record: ResourceRecord) -> None:
        spec = BatchTransformJob.model_validate(record.spec)
        status = json.loads(json.dumps(record.status))  # a copy to change
        if record.desired.get("delete"):
            for worker in status.get("workers", []):
                self._stop(worker)
            self.ctx.store.delete(record.uid)
            return
        if record.state == BatchState.PENDING and "workers" not in status:
            transition = self._prepare(record, spec, status)
            if transition is not None:
                self.ctx.store.update_status(record.uid, status, transition, active=False)
                return
        stopping = bool(record.desired.get("stop"))
        for worker in status["workers"]:
            self._follow(spec, status, worker, stopping)
        self._progress(status)
        transition = self._outcome(spec, status, stopping, record.state)
        ended = transition is not None and transition.state in BatchState.TERMINAL
        if transition is None and status == record.status:
            return
        self.ctx.store.update_status(
            record.uid, status, *([transition] if transition else []), active=False if ended else None
        )

    # Start -------------------------------------------------------------------------------------------
    def _prepare(self, record: ResourceRecord, spec: BatchTransformJob, status: dict[str, Any]) -> Transition | None:
        try:
            model, version = self.ctx.resolve_model(spec.model)
        except StratoError as exc:
            status["message"] = f"cannot resolve model {spec.model}: {exc.message}"
            return Transition(BatchState.FAILED, reason="ModelNotFound", message=status["message"])
        source = Path(spec.input.removeprefix("file://"))
        if spec.input.startswith("lake://") and self.ctx.lake is not None:
            try:
                status["input_location"], status["input_version"] = self.ctx.lake.resolve(spec.input)
            except StratoError as exc:
                status["message"] = f"input {spec.input}: {exc.message}"
                return Transition(BatchState.FAILED, reason="InputNotFound", message=status["message"])
            self._record_input(record, parse_uri(spec.input).name, status["input_version"])
        elif (source / "_delta_log").is_dir():  # pinned: every worker, and every restart, reads the same version
            from deltalake import DeltaTable

            status["input_version"] = DeltaTable(str(source)).version()
        status.update(
            model=model,
            version=version,
            output=spec.output or self.ctx.default_output(spec.name),
            workers=[{"index": i, "task_id": None, "attempts": []} for i in range(spec.workers)],
            started_at=self.ctx.clock(),
        )
        return None

    def _record_input(self, record: ResourceRecord, table: str, version: int) -> None:
        """Lineage: the exact lake table version the job scores."""
        lineage = Lineage(self.ctx.store)
        batch = (kinds.BATCH_TRANSFORM, record.uid)
        lineage.node(*batch, record.name)
        dataset = (kinds.DATASET, f"lake://{table}@v{version}")
        lineage.node(*dataset, f"lake://{table}", table=table, version=version)
        lineage.link(dataset, batch, kinds.INPUT_OF)

    def _submit(self, spec: BatchTransformJob, status: dict[str, Any], worker: dict[str, Any]) -> None:
        env, secret_env = self.ctx.model_env()
        join = spec.join_input if isinstance(spec.join_input, str) else ",".join(spec.join_input)
        command = [
            sys.executable, "-m", "strato.batch.worker", "--model", status["model"], "--cache", str(self.ctx.cache_dir),
            "--input", status.get("input_location", spec.input), "--output", status["output"],
            "--batch-size", str(spec.batch_size),
            "--workers", str(spec.workers), "--worker-index", str(worker["index"]), "--join-input", join,
            "--input-format", spec.input_format, "--prediction-column", spec.prediction_column,
        ]  # fmt: skip
        if status.get("input_version") is not None:
            command += ["--input-version", str(status["input_version"])]
        r = spec.resources
        task = TaskSpec(
            command=command,
            env={"PYTHONUNBUFFERED": "1", **self.ctx.passed_env(), **env},
            secret_env=secret_env,
            resources=TaskResources(cpus=r.cpus, memory=r.memory, gpus=r.gpus),
            labels={"strato.kind": KIND, "strato.name": spec.name, "strato.worker": str(worker["index"])},
        )
        try:
            worker["task_id"] = self.ctx.backend.submit(task)
        except CapacityUnavailable as exc:
            status["message"] = f"waiting for capacity: {exc.message}"
            return
        worker["attempts"].append({"task_id": worker["task_id"], "started_at": self.ctx.clock(), "cpus": r.cpus})

    # Follow ------------------------------------------------------------------------------------------
    def _follow(self, spec: BatchTransformJob, status: dict[str, Any], worker: dict[str, Any], stopping: bool) -> None:
        if worker.get("done") or worker.get("failed"):
            return
        if worker["task_id"] is None:
            if not stopping:
                self._submit(spec, status, worker)
            return
        if stopping:
            self._stop(worker)
        try:
            task = self.ctx.backend.status(worker["task_id"])
        except NotFound:
            task = None
        if task is not None and task.state is TaskState.RUNNING:
            return
        attempt = worker["attempts"][-1]
        attempt.update(ended_at=(task.ended_at if task and task.ended_at else self.ctx.clock()))
        attempt.update(exit_code=task.exit_code if task else None, cpu_seconds=task.cpu_seconds if task else None)
        if task is not None and task.state is TaskState.SUCCEEDED:
            worker["done"] = True
        elif stopping:
            worker["stopped"] = True
        else:
            reason = self._reason(worker["task_id"], task)
            attempt["reason"] = reason
            if len(worker["attempts"]) >= spec.retry.max_attempts:
                worker["failed"] = reason
            worker["task_id"] = None  # resubmitted next pass: the worker resumes after its written parts
        if task is not None:
            self.ctx.backend.release(attempt["task_id"])

    def _reason(self, task_id: str, task: Any) -> str:
        try:
            text = self.ctx.backend.logs(task_id, 0, 256 * 1024).data.decode(errors="replace")
        except StratoError:
            text = ""
        reason = last_failure_reason(text)
        if reason:
            return reason
        if task is None:
            return "the worker was lost"
        tail = " | ".join(text.strip().splitlines()[-3:])
        return f"worker exited with code {task.exit_code}" + (f": {tail}" if tail else "")

    def _stop(self, worker: dict[str, Any]) -> None:
        if worker.get("task_id"):
            with contextlib.suppress(NotFound):
                self.ctx.backend.stop(worker["task_id"], STOP_GRACE)

    def _progress(self, status: dict[str, Any]) -> None:
        """Totals from each worker's progress file (written atomically by the worker after every part)."""
        totals = {"parts_done": 0, "parts_total": 0, "rows_done": 0, "rows_total": 0, "bad_rows": 0}
        seen = False
        for worker in status["workers"]:
            path = Path(status["output"]) / "_progress" / f"worker-{worker['index']}.json"
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            seen = True
            for key in totals:
                totals[key] += int(data.get(key, 0))
        if seen:
            status["progress"] = totals
        billed = sum(
            (a["ended_at"] if a.get("ended_at") else self.ctx.clock()) - a["started_at"]
            for w in status["workers"]
            for a in w["attempts"]
        )
        cpu = sum(float(a.get("cpu_seconds") or 0.0) for w in status["workers"] for a in w["attempts"])
        status["usage"] = {"billed_seconds": round(billed, 3), "cpu_seconds": round(cpu, 3)}

    def _outcome(
        self, spec: BatchTransformJob, status: dict[str, Any], stopping: bool, state: str
    ) -> Transition | None:
        workers = status["workers"]
        failed = [w for w in workers if w.get("failed")]
        if failed:
            for worker in workers:
                self._stop(worker)
            if all(not w.get("task_id") or w.get("failed") or w.get("done") for w in workers):
                status["message"] = (
                    f"worker {failed[0]['index']} failed {spec.retry.max_attempts} times: {failed[0]['failed']}"
                )
                return Transition(BatchState.FAILED, reason="WorkerFailed", message=status["message"])
            return None
        if all(w.get("done") for w in workers):
            if spec.output_format == "delta" and "output_version" not in status:
                status["output_version"] = _as_delta(status["output"])
            status["ended_at"] = self.ctx.clock()
            elapsed = max(1e-9, status["ended_at"] - status["started_at"])
            rows = status.get("progress", {}).get("rows_done", 0)
            status["rows_per_second"] = round(rows / elapsed, 1)
            bad = status.get("progress", {}).get("bad_rows", 0)
            status["message"] = f"scored {rows} rows ({bad} bad) into {status['output']}"
            return Transition(BatchState.COMPLETED, reason="Completed", message=status["message"])
        if stopping:
            if all(w.get("done") or w.get("stopped") or not w.get("task_id") for w in workers):
                return Transition(BatchState.STOPPED, reason="Stopped", message="stopped")
            return Transition(BatchState.STOPPING, reason="Stopping") if state != BatchState.STOPPING else None
        if state == BatchState.PENDING and any(w.get("task_id") for w in workers):
            return Transition(BatchState.RUNNING, reason="Started", message=f"{len(workers)} workers")
        return None
