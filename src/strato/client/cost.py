"""The cost engine from Python: quotes, the catalog, the ledger and the report."""

from __future__ import annotations

from typing import Any

from strato.client.http import Transport
from strato.specs.base import ResourceSpec


class CostClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def quote(self, spec: ResourceSpec | None = None, *, limit: int = 20, **request: Any) -> dict[str, Any]:
        """Every feasible option for a request (cpus, memory_gib, gpus, gpu_type, nodes, hours, deadline_hours,
        clouds, regions, purchase, ...) or for a spec, cheapest expected cost first."""
        body: dict[str, Any] = {"request": request, "limit": limit}
        if spec is not None:
            body["spec"] = spec.model_dump(mode="json")
        return dict(self.transport.json("POST", "/api/v1/cost/quote", json=body))

    def catalog(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return dict(self.transport.json("GET", "/api/v1/cost/catalog", params=params))

    def update_catalog(self, **options: Any) -> dict[str, Any]:
        return dict(self.transport.json("POST", "/api/v1/cost/catalog/update", json=options, timeout=600.0))

    def records(self, since_days: float = 30.0) -> list[dict[str, Any]]:
        return list(self.transport.json("GET", "/api/v1/cost/records", params={"since_days": since_days}))

    def report(self, since_days: float = 30.0) -> dict[str, Any]:
        return dict(self.transport.json("GET", "/api/v1/cost/report", params={"since_days": since_days}))
