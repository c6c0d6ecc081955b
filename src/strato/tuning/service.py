"""What the API does with tuning jobs: validate and store them (desired state first), read them and their
trials back, and record stop, resume and delete requests. Running trials is the reconciler's work."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from strato.errors import AlreadyExists, Conflict, NotFound
from strato.jobs.service import JobService
from strato.specs.training_job import TrainingJob
from strato.specs.tuning_job import TuningJob
from strato.store.metadata import MetadataStore, ResourceRecord
from strato.store.secrets import MASK, SecretBox
from strato.tuning.states import Reason, TuningState
from strato.tuning.trials import job_name

KIND = TuningJob.KIND


class TuningService:
    def __init__(
        self, store: MetadataStore, jobs: JobService, secrets: SecretBox, wake: Callable[[], None] = lambda: None
    ):
        self.store = store
        self.jobs = jobs
        self.secrets = secrets
        self.wake = wake

    # Create ----------------------------------------------------------------------------------------
    def apply(self, spec: TuningJob) -> tuple[ResourceRecord, bool]:
        """Store a new tuning job (returns it and True), or return the identical existing one (and False)."""
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            existing = None
        spec = self._resolve(spec)
        if existing is not None:
            if self._plain(existing.spec) == spec.model_dump(mode="json"):
                return existing, False
            raise AlreadyExists(
                f"TuningJob {spec.name!r} already exists (state {existing.state}) with a different spec; "
                "tuning jobs cannot be changed: choose another name or delete the old one first",
                details={"kind": KIND, "name": spec.name},
            )
        template = spec.template
        encrypted = {k: self.secrets.encrypt(v) for k, v in template.secrets.items()}
        stored = spec.model_copy(update={"template": template.model_copy(update={"secrets": encrypted})})
        record = self.store.create(
            KIND,
            spec.name,
            stored.model_dump(mode="json"),
            state=TuningState.PENDING,
            reason=Reason.CREATED,
            message="tuning job stored; waiting for the reconciler",
            status={"message": "waiting to start", "budget": spec.trial_budget},
        )
        self.wake()
        return record, True

    def _plain(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored spec with its template's secrets decrypted (to compare with a new apply)."""
        spec = dict(stored)
        template = dict(spec["template"])
        template["secrets"] = {k: self.secrets.decrypt(v) for k, v in template.get("secrets", {}).items()}
        spec["template"] = template
        return spec

    def _resolve(self, spec: TuningJob) -> TuningJob:
        """Check the template as the job service checks a job (backend, resources, code, inputs) before
        anything is stored, and snapshot a local code directory once for every trial."""
        probe = TrainingJob.model_validate({**spec.template.model_dump(mode="json"), "name": job_name(spec.name, 0)})
        resolved = self.jobs.check(probe)
        if resolved.code == spec.template.code:
            return spec
        return spec.model_copy(update={"template": spec.template.model_copy(update={"code": resolved.code})})

    # Read ------------------------------------------------------------------------------------------
    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        spec = dict(record.spec)
        template = dict(spec.get("template", {}))
        template["secrets"] = {k: MASK for k in template.get("secrets", {})}
        spec["template"] = template
        return record.view(spec)

    def trials(self, name: str) -> builtins.list[dict[str, Any]]:
        """One row per trial, in trial order: its job, state, hyperparameters, objective and progress."""
        return [dict(entry) for entry in self.get(name).status.get("trials", [])]

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        return [e.__dict__ for e in self.store.events(self.get(name).uid)]

    # Change ----------------------------------------------------------------------------------------
    def stop(self, name: str) -> ResourceRecord:
        """Stop the running trials and the search; ``resume`` continues the same study later."""
        record = self.get(name)
        if TuningState(record.state).terminal:
            return record
        record = self.store.set_desired(record.uid, stop=True)
        self.wake()
        return record

    def resume(self, name: str) -> ResourceRecord:
        """Continue a stopped tuning job: trials already run count, none runs twice."""
        record = self.get(name)
        state = TuningState(record.state)
        if state is not TuningState.STOPPED:
            stopping = state is TuningState.STOPPING
            hint = " (it is still stopping its trials; resume once it is Stopped)" if stopping else ""
            raise Conflict(f"TuningJob {name!r} is {state}; only a Stopped tuning job can be resumed{hint}")
        record = self.store.set_desired(record.uid, stop=False)
        self.wake()
        return record

    def delete(self, name: str) -> None:
        """Delete the tuning job, its trial jobs (their artifacts stay) and its study."""
        record = self.get(name)
        self.store.set_desired(record.uid, delete=True)
        self.wake()
