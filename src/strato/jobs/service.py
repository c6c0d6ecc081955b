"""What the API does with training jobs: validate and store them (desired state first), and read back
their status, history, metrics and logs. Starting and watching them is the reconciler's work."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.compute.base import TaskResources
from strato.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, StratoError
from strato.jobs import gang
from strato.jobs.reconciler import JobContext
from strato.jobs.recovery import STRATEGIES
from strato.jobs.runner import SNAPSHOT_PREFIX, STORE_SCHEME
from strato.jobs.states import JobState, Reason
from strato.jobs.task import artifact_prefix
from strato.lake.tables import parse_uri
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.specs.training_job import TrainingJob
from strato.store.metadata import ResourceRecord
from strato.store.secrets import MASK

KIND = TrainingJob.KIND
log = logging.getLogger("strato.jobs")


class JobService:
    def __init__(self, ctx: JobContext, wake: Callable[[], None] = lambda: None):
        self.ctx = ctx
        self.wake = wake

    # Create ----------------------------------------------------------------------------------------
    def apply(self, spec: TrainingJob) -> tuple[ResourceRecord, bool]:
        """Store a new job (returns it and True), or return the identical existing one (and False)."""
        try:
            existing = self.ctx.store.get(KIND, spec.name)
        except NotFound:
            existing = None
        spec = self.check(spec)
        if existing is not None:
            if self._same(existing, spec):
                return existing, False
            raise AlreadyExists(
                f"TrainingJob {spec.name!r} already exists (state {existing.state}) with a different spec; "
                "training jobs cannot be changed: choose another name or delete the old job first",
                details={"kind": KIND, "name": spec.name},
            )
        stored = spec.model_copy(update={"secrets": {k: self.ctx.secrets.encrypt(v) for k, v in spec.secrets.items()}})
        record = self.ctx.store.create(
            KIND,
            spec.name,
            stored.model_dump(mode="json"),
            state=JobState.PENDING,
            reason=Reason.CREATED,
            message="job stored; waiting for the reconciler",
            status={"message": "waiting to start"},
        )
        self._record_lineage(record, spec)
        self.wake()
        return record, True

    def _record_lineage(self, record: ResourceRecord, spec: TrainingJob) -> None:
        """What the job is made of: its code snapshot and each input, fingerprinted as it is now."""
        lineage = Lineage(self.ctx.store)
        job = (kinds.JOB, record.uid)
        lineage.node(*job, record.name)
        if spec.code:
            lineage.node(kinds.CODE, spec.code, spec.code)
            lineage.link((kinds.CODE, spec.code), job, kinds.CODE_OF)
        for channel, source in sorted(spec.inputs.items()):
            if source.startswith("lake://"):
                ref = parse_uri(source)
                table = (kinds.DATASET, f"lake://{ref.name}@v{ref.version}")
                lineage.node(*table, f"lake://{ref.name}", table=ref.name, version=ref.version, channel=channel)
                lineage.link(table, job, kinds.INPUT_OF)
                continue
            uri = source
            if source.startswith(STORE_SCHEME):
                uri = self.ctx.artifacts.uri(source[len(STORE_SCHEME) :])
            options = self.ctx.artifact_options if uri.startswith("s3://") else None
            try:
                dataset = lineage.dataset(uri, storage_options=options, channel=channel)
            except StratoError as exc:  # it existed a moment ago (checked): note it, never refuse the job
                log.warning("lineage of %s: cannot fingerprint input %s: %s", record.name, source, exc.message)
                continue
            lineage.link(dataset, job, kinds.INPUT_OF)

    def _same(self, existing: ResourceRecord, spec: TrainingJob) -> bool:
        old = dict(existing.spec)
        old["secrets"] = {k: self.ctx.secrets.decrypt(v) for k, v in old.get("secrets", {}).items()}
        # Through the model, so a spec stored before a field with a default existed still compares equal.
        return bool(TrainingJob.model_validate(old).model_dump(mode="json") == spec.model_dump(mode="json"))

    def check(self, spec: TrainingJob) -> TrainingJob:
        """Check what the job needs exists and fits, without storing it; returns the spec with a server-side
        code directory snapshotted into the store. ``apply`` and the tuning service's templates use it."""
        backend_name = spec.compute or self.ctx.default_backend
        if backend_name not in self.ctx.backends:
            raise InvalidArgument(
                f"compute: unknown compute backend {backend_name!r} "
                f"(configured: {', '.join(sorted(self.ctx.backends))})"
            )
        resources = spec.resources
        self.ctx.backends[backend_name].check_fits_gang(
            TaskResources(resources.cpus, resources.memory, resources.gpus), spec.instance_count
        )
        if spec.spot is not None and spec.spot.recovery.strategy not in STRATEGIES:
            raise InvalidArgument(f"spot.recovery.strategy: {STRATEGIES.unknown_message(spec.spot.recovery.strategy)}")
        code = self._resolve_code(spec.code) if spec.code else None
        inputs = {}
        for channel, source in spec.inputs.items():
            inputs[channel] = self._pin_lake(f"inputs.{channel}", source)
            self._check_source(f"inputs.{channel}", inputs[channel])
        return spec.model_copy(update={"code": code, "inputs": inputs})

    def _pin_lake(self, field: str, source: str) -> str:
        """``lake://NAME`` becomes ``lake://NAME@VERSION`` (the latest now): a retry or a re-run of the job
        reads the same rows, and lineage records the exact version."""
        if not source.startswith("lake://"):
            return source
        if self.ctx.lake is None:
            raise InvalidArgument(f"{field}: this control plane has no lake to read {source} from")
        try:
            _, version = self.ctx.lake.resolve(source)
        except StratoError as exc:
            raise InvalidArgument(f"{field}: {exc.message}") from None
        return f"lake://{parse_uri(source).name}@{version}"

    def _resolve_code(self, code: str) -> str:
        if code.startswith(STORE_SCHEME) or "://" in code:
            self._check_source("code", code)
            return code
        path = Path(code)
        if not path.is_absolute():
            raise InvalidArgument(
                f"code: relative path {code!r} cannot be resolved by the server; the SDK and CLI "
                "upload it for you, or give an absolute path"
            )
        if not path.is_dir():
            raise InvalidArgument(f"code: directory {code} does not exist")
        from strato.store.artifacts import snapshot_dir

        data, digest = snapshot_dir(path)
        key = f"{SNAPSHOT_PREFIX}{digest}.tar.gz"
        if not self.ctx.artifacts.exists(key):
            self.ctx.artifacts.put_bytes(key, data)
        return STORE_SCHEME + key

    def _check_source(self, field: str, source: str) -> None:
        if source.startswith("lake://"):  # pinned and checked by _pin_lake
            return
        if source.startswith(STORE_SCHEME):
            path = source[len(STORE_SCHEME) :]
            if not (self.ctx.artifacts.exists(path) or self.ctx.artifacts.list(path)):
                raise InvalidArgument(f"{field}: {source} does not exist in the artifact store (upload it first)")
            return
        if source.startswith("file://") or "://" not in source:
            local = Path(source.removeprefix("file://"))
            if not local.is_absolute():
                raise InvalidArgument(
                    f"{field}: relative path {source!r} cannot be resolved by the server; the SDK "
                    "and CLI upload it for you, or give an absolute path or a URI"
                )
            if not local.exists():
                raise InvalidArgument(f"{field}: path {local} does not exist")
            return
        from strato.store.artifacts import uri_exists

        options = self.ctx.artifact_options if source.startswith("s3://") else None
        if not uri_exists(source, options):
            raise InvalidArgument(f"{field}: {source} does not exist (or cannot be read with the store's credentials)")

    # Read ------------------------------------------------------------------------------------------
    def get(self, name: str) -> ResourceRecord:
        return self.ctx.store.get(KIND, name)

    def list(self) -> list[ResourceRecord]:
        return self.ctx.store.list(KIND)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        spec = dict(record.spec)
        spec["secrets"] = {k: MASK for k in spec.get("secrets", {})}
        return record.view(spec)

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        record = self.get(name)
        return [e.__dict__ for e in self.ctx.store.events(record.uid)]

    def metrics(self, name: str, names: builtins.list[str] | None = None) -> builtins.list[dict[str, Any]]:
        record = self.get(name)
        return [p.__dict__ for p in self.ctx.store.metrics(record.uid, names)]

    def logs(self, name: str, offset: int = 0, attempt: int | None = None, worker: int = 0) -> dict[str, Any]:
        """Log bytes from ``offset`` of one attempt (the latest by default) of one worker (rank 0 by
        default), while it runs or after. Each worker's log is kept apart: rank 0's is stored where a
        single-worker job's is (``attempt-N/log.txt``), worker K's at ``attempt-N/worker-K/log.txt``."""
        record = self.get(name)
        status = record.status
        latest = int(status.get("attempt", 0))
        attempt = attempt or latest
        workers = int(record.spec.get("instance_count", 1))
        if not 0 <= worker < workers:
            raise NotFound(
                f"TrainingJob {name!r} has no worker {worker}: it has {workers} "
                + ("(worker 0 only)" if workers == 1 else f"(workers 0 to {workers - 1})")
            )
        if attempt < 1:
            return {
                "data": "",
                "next_offset": 0,
                "complete": JobState(record.state).terminal,
                "attempt": 0,
                "worker": worker,
            }
        if attempt > latest:
            raise NotFound(f"TrainingJob {name!r} has no attempt {attempt} (it has {latest})")
        task_ids = gang.task_ids(status) if attempt == latest else []
        task_id = task_ids[worker] if worker < len(task_ids) else None
        if task_id:
            spec = TrainingJob.model_validate(record.spec)
            try:
                chunk = self.ctx.backend_for(spec).logs(task_id, offset)
                # While the job is still active, the log may continue after the task's end is read.
                return {
                    "data": chunk.data.decode("utf-8", errors="replace"),
                    "next_offset": chunk.next_offset,
                    "complete": False,
                    "attempt": attempt,
                    "worker": worker,
                }
            except NotFound:
                pass  # released between our reads: the artifact copy below has it
        attempt_dir = f"{artifact_prefix(record.name, record.uid)}/attempt-{attempt}"
        path = f"{attempt_dir}/worker-{worker}/log.txt" if worker else f"{attempt_dir}/log.txt"
        done = JobState(record.state).terminal or attempt < latest
        if not self.ctx.artifacts.exists(path):
            return {"data": "", "next_offset": offset, "complete": done, "attempt": attempt, "worker": worker}
        size = self.ctx.artifacts.size(path)
        data = self.ctx.artifacts.read_range(path, offset, max(0, size - offset)) if offset < size else b""
        return {
            "data": data.decode("utf-8", errors="replace"),
            "next_offset": offset + len(data),
            "complete": done,
            "attempt": attempt,
            "worker": worker,
        }

    # Change ----------------------------------------------------------------------------------------
    def stop(self, name: str) -> ResourceRecord:
        record = self.get(name)
        if JobState(record.state).terminal:
            return record
        record = self.ctx.store.set_desired(record.uid, stop=True)
        self.wake()
        return record

    def interrupt(self, name: str, notice: float | None = None) -> ResourceRecord:
        """Interrupt a running job as a spot reclaim would (the job restarts from its checkpoint)."""
        record = self.get(name)
        if not JobState(record.state).has_task or record.state in (JobState.STOPPING, JobState.INTERRUPTED):
            raise Conflict(f"TrainingJob {name!r} is {record.state}; only a running job can be interrupted")
        changes: dict[str, Any] = {"interrupt": int(record.desired.get("interrupt", 0)) + 1}
        if notice is not None:
            changes["interrupt_notice"] = notice
        record = self.ctx.store.set_desired(record.uid, **changes)
        self.wake()
        return record

    def delete(self, name: str) -> None:
        record = self.get(name)
        self.ctx.store.set_desired(record.uid, delete=True)
        self.wake()
