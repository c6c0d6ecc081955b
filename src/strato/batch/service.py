"""What the API does with batch transform jobs: check and store them (desired state first), read them
back, and record stop and delete requests. Running the workers is the reconciler's work."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.compute.base import ComputeBackend, TaskResources
from strato.errors import AlreadyExists, InvalidArgument, NotFound
from strato.lake.tables import LakeTables
from strato.serving.model_files import local_model_problem
from strato.specs.batch_transform import BatchTransformJob
from strato.store.metadata import MetadataStore, ResourceRecord

KIND = BatchTransformJob.KIND


class BatchTransformService:
    def __init__(
        self,
        store: MetadataStore,
        backend: ComputeBackend,
        wake: Callable[[], None] = lambda: None,
        lake: LakeTables | None = None,
    ):
        self.store, self.backend, self.wake, self.lake = store, backend, wake, lake

    def apply(self, spec: BatchTransformJob) -> tuple[ResourceRecord, bool]:
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            existing = None
        if existing is not None:
            if BatchTransformJob.model_validate(existing.spec).model_dump(mode="json") == spec.model_dump(mode="json"):
                return existing, False
            raise AlreadyExists(
                f"BatchTransformJob {spec.name!r} already exists (state {existing.state}) with a different spec; "
                "choose another name or delete the old one first",
                details={"kind": KIND, "name": spec.name},
            )
        self._check(spec)
        record = self.store.create(
            KIND, spec.name, spec.model_dump(mode="json"), state="Pending", reason="Created",
            message="waiting for the reconciler", status={},
        )  # fmt: skip
        self.wake()
        return record, True

    def _check(self, spec: BatchTransformJob) -> None:
        """What can be known at apply: the input and a local model exist, and a worker fits the machine."""
        source = Path(spec.input.removeprefix("file://"))
        if spec.input.startswith("lake://"):
            if self.lake is None:
                raise InvalidArgument(f"input {spec.input}: this control plane has no lake")
            self.lake.resolve(spec.input)  # a clear NotFound when the table or version does not exist
        elif "://" not in spec.input.removeprefix("file://"):
            if not source.is_absolute():
                raise InvalidArgument(f"input {spec.input!r} must be an absolute path on the server")
            if not source.exists():
                raise InvalidArgument(f"input {spec.input} does not exist")
        problem = local_model_problem(spec.model)
        if problem:
            raise InvalidArgument(problem)
        r = spec.resources
        self.backend.check_fits(TaskResources(cpus=r.cpus, memory=r.memory, gpus=r.gpus))

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def stop(self, name: str) -> ResourceRecord:
        record = self.get(name)
        if record.state in ("Completed", "Failed", "Stopped"):
            return record
        record = self.store.set_desired(record.uid, stop=True)
        self.wake()
        return record

    def delete(self, name: str) -> None:
        record = self.get(name)
        self.store.set_desired(record.uid, delete=True)
        self.wake()

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()
