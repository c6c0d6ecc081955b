"""What the API does with endpoints: validate and store them (desired state first; applying a changed
spec replaces it in place and the reconciler rolls the replicas over), read them back, and record
delete requests. Starting replicas and routing are the reconciler's and the router's work."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from strato.compute.base import ComputeBackend, TaskResources
from strato.errors import InvalidArgument, NotFound
from strato.serving.model_files import local_model_problem
from strato.specs.endpoint import Endpoint
from strato.store.metadata import MetadataStore, ResourceRecord

KIND = Endpoint.KIND


class EndpointService:
    def __init__(self, store: MetadataStore, backend: ComputeBackend, wake: Callable[[], None] = lambda: None):
        self.store, self.backend, self.wake = store, backend, wake

    def apply(self, spec: Endpoint) -> tuple[ResourceRecord, bool]:
        """Store a new endpoint (True), return the identical one (False), or replace a changed one's spec."""
        self._check(spec)
        data = spec.model_dump(mode="json")
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            existing = None
        if existing is not None and existing.desired.get("delete"):
            raise InvalidArgument(f"endpoint {spec.name!r} is being deleted; apply it again once it is gone")
        if existing is None:
            record = self.store.create(
                KIND, spec.name, data, state="Creating", reason="Created", message="waiting for the reconciler",
                status={"variants": {}},
            )  # fmt: skip
            self.wake()
            return record, True
        if Endpoint.model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        record = self.store.replace_spec(existing.uid, data)
        self.wake()
        return record, False

    def _check(self, spec: Endpoint) -> None:
        """What can be known at apply: local model directories exist and hold an MLflow model, and every
        replica fits the machine (``models:/`` references are resolved by the reconciler)."""
        models = [(v.name, v.model) for v in spec.variants]
        if spec.shadow is not None:
            models.append(("shadow", spec.shadow.model))
        for variant, model in models:
            problem = local_model_problem(model)
            if problem:
                raise InvalidArgument(f"variant {variant!r}: {problem}")
        for v in spec.variants:
            r = v.resources
            self.backend.check_fits(TaskResources(cpus=r.cpus, memory=r.memory, gpus=r.gpus))

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def delete(self, name: str) -> None:
        """Stop the replicas and forget the endpoint (the reconciler finishes it)."""
        record = self.get(name)
        self.store.set_desired(record.uid, delete=True)
        self.wake()

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()
