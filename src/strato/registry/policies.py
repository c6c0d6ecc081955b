"""``ApprovalPolicy`` resources: stored like any resource (``strato apply -f policy.yaml``) but driven by
no reconciler (stored inactive, state ``Active``); the registry reads a model's policy when a version
of it is approved. Applying a changed policy replaces its spec, as ``kubectl apply`` does."""

from __future__ import annotations

import builtins
from typing import Any

from strato.errors import NotFound
from strato.specs.approval_policy import ApprovalPolicy
from strato.store.metadata import MetadataStore, ResourceRecord

KIND = ApprovalPolicy.KIND
ACTIVE = "Active"


class PolicyService:
    def __init__(self, store: MetadataStore):
        self.store = store

    def apply(self, spec: ApprovalPolicy) -> tuple[ResourceRecord, bool]:
        """Store a new policy (True), return the identical one (False), or replace a changed one's spec."""
        data = spec.model_dump(mode="json")
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            existing = None
        if existing is None:
            record = self.store.create(
                KIND,
                spec.name,
                data,
                state=ACTIVE,
                reason="Created",
                message=f"governs the versions of registered model {spec.name!r}",
                status={"generation": 1},
                active=False,
            )
            return record, True
        if ApprovalPolicy.model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        generation = int(existing.status.get("generation", 1)) + 1
        return self.store.replace_spec(existing.uid, data, {**existing.status, "generation": generation}), False

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def delete(self, name: str) -> None:
        self.store.delete(self.get(name).uid)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()

    def find(self, model: str) -> ApprovalPolicy | None:
        """The policy of a registered model, or None (then one approval suffices, with no gates)."""
        try:
            record = self.store.get(KIND, model)
        except NotFound:
            return None
        return ApprovalPolicy.model_validate(record.spec)
