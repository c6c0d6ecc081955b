"""Registering a model version from a training job (its MLflow run) or from a run id, on MLflow's
registry. Every new version starts PendingManualApproval (an approval event and a mirrored tag) and is
recorded in lineage as produced by its run."""

from __future__ import annotations

import logging
import time
from typing import Any

from strato.errors import Conflict, InvalidArgument, NotFound, Unavailable
from strato.jobs.states import JobState
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.registry.approvals import Action, ApprovalLog, ApprovalStatus
from strato.registry.catalog import STATUS_TAG, RegistryContext
from strato.registry.mlflow_access import error_code, is_mlflow_error, translated
from strato.registry.source import ModelSource, find_source
from strato.specs.base import check_name
from strato.specs.training_job import TrainingJob
from strato.store.metadata import MetadataStore, ResourceRecord
from strato.tracking.runs import RunIndex

log = logging.getLogger("strato.registry")

ATTEMPTS = 6  # a registration racing another for the model or a version number is retried
USER_ERRORS = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"})
RESERVED_TAG_PREFIX = "strato."


def check_model_name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise InvalidArgument(f"model {exc}") from None


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    for key in tags:
        if not key or key.startswith(RESERVED_TAG_PREFIX):
            raise InvalidArgument(f"tag {key!r}: tags starting with {RESERVED_TAG_PREFIX!r} are kept by Strato")
    return {str(k): str(v) for k, v in tags.items()}


def _job_advice(name: str, state: str) -> str:
    if state == JobState.FAILED:
        return f"see why with `strato logs job {name}`, fix it and run it again"
    if state == JobState.STOPPED:
        return "it was stopped before it finished; run it again"
    return f"wait for it with `strato wait job {name}`, then register"


class Registrar:
    def __init__(self, ctx: RegistryContext, store: MetadataStore):
        self.ctx = ctx
        self.store = store
        self.runs = RunIndex(store)
        self.lineage = Lineage(store)

    def job_run(self, job: str) -> tuple[ResourceRecord, str]:
        """The Completed training job ``job`` and its MLflow run id."""
        record = self.store.get(TrainingJob.KIND, job)
        if record.state != JobState.COMPLETED:
            raise Conflict(
                f"TrainingJob {job!r} is {record.state}; only a Completed job's model can be registered: "
                + _job_advice(job, record.state),
                details={"job": job, "state": record.state},
            )
        tracked = self.runs.get(record.uid)
        if tracked is None:
            raise NotFound(
                f"TrainingJob {job!r} has no MLflow run (did it run while experiment tracking was off?); "
                "register a model logged elsewhere with --run RUN_ID",
                details={"job": job},
            )
        return record, tracked.run_id

    def run(self, run_id: str) -> Any:
        client = self.ctx.mlflow.client()
        try:
            return client.get_run(run_id)
        except Exception as exc:
            if is_mlflow_error(exc) and error_code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NotFound(
                    f"run {run_id!r} not found on the MLflow tracking server", details={"run_id": run_id}
                ) from None
            raise

    def source(self, run: Any) -> ModelSource:
        """The run's model. A job's run has one when the job ended: its script logged it, or the job's
        model directory was logged into the run when the job finished (``tracking/packaging.py``)."""
        with translated(f"run {run.info.run_id}"):
            return find_source(self.ctx.mlflow.client(), run)

    def create_version(self, name: str, source: ModelSource, tags: dict[str, str], description: str | None) -> Any:
        """Create the registered model when needed, then a new version; races (two registrations taking
        version numbers, SQLite busy) are retried, each retry asking MLflow for a fresh number."""
        client = self.ctx.mlflow.client()
        all_tags = {**tags, STATUS_TAG: str(ApprovalStatus.PENDING)}
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            try:
                self._ensure_model(client, name)
                return client.create_model_version(
                    name,
                    source.uri,
                    run_id=source.run_id,
                    tags=all_tags,
                    description=description,
                    await_creation_for=0,
                    model_id=source.model_id,
                )
            except Exception as exc:
                if not is_mlflow_error(exc) or error_code(exc) in USER_ERRORS:
                    raise
                last = exc
                log.info("registering %s raced another registration (%s); retrying", name, exc)
                time.sleep(0.1 * (attempt + 1))
        raise Unavailable(f"could not register a version of model {name!r} after {ATTEMPTS} attempts: {last}")

    @staticmethod
    def _ensure_model(client: Any, name: str) -> None:
        try:
            client.get_registered_model(name)
            return
        except Exception as exc:
            if not (is_mlflow_error(exc) and error_code(exc) == "RESOURCE_DOES_NOT_EXIST"):
                raise
        try:
            client.create_registered_model(name)
        except Exception as exc:
            if not (is_mlflow_error(exc) and error_code(exc) in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")):
                raise

    def record(self, mv: Any, source: ModelSource, actor: str, job: ResourceRecord | None, log_: ApprovalLog) -> None:
        """The version's first approval event (Pending) and its lineage: run --produced--> version."""
        origin = f"job {job.name} (run {source.run_id})" if job else f"run {source.run_id}"
        details: dict[str, Any] = {"run_id": source.run_id, "source": source.uri}
        if job is not None:
            details["job"] = job.name
        log_.append(
            mv.name, str(mv.version), Action.SUBMITTED, actor, f"registered from {origin}", details,
            status=ApprovalStatus.PENDING,
        )  # fmt: skip
        key = f"{mv.name}/{mv.version}"
        self.lineage.node(kinds.RUN, source.run_id)
        self.lineage.node(kinds.MODEL_VERSION, key, key, model=mv.name, version=str(mv.version), source=source.uri)
        self.lineage.link((kinds.RUN, source.run_id), (kinds.MODEL_VERSION, key), kinds.PRODUCED)
