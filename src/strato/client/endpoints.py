"""Endpoints from Python: deploy (``apply``), wait until in service, and invoke through the router."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from strato.client.http import Transport
from strato.errors import StratoError, Timeout
from strato.specs.endpoint import Endpoint

REMOTE = ("models:/", "runs:/", "s3://", "mlflow-artifacts:/", "file://")


def with_local_models(spec: Endpoint, base_dir: str | Path) -> Endpoint:
    """Local model directories made absolute (relative ones are relative to the spec file's directory)."""

    def fix(model: str) -> str:
        return model if model.startswith(REMOTE) else str((Path(base_dir) / model).resolve())

    variants = [v.model_copy(update={"model": fix(v.model)}) for v in spec.variants]
    shadow = spec.shadow.model_copy(update={"model": fix(spec.shadow.model)}) if spec.shadow else None
    return spec.model_copy(update={"variants": variants, "shadow": shadow})


class EndpointsClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def apply(self, spec: Endpoint, *, base_dir: str | Path = ".") -> dict[str, Any]:
        body = with_local_models(spec, base_dir).model_dump(mode="json")
        return dict(self.transport.json("POST", "/api/v1/apply", json=body)["resource"])

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.transport.json("GET", f"/api/v1/endpoints/{name}"))

    def wait(self, name: str, *, timeout: float = 300.0, poll: float = 0.25) -> dict[str, Any]:
        """Until the endpoint is in service (or Failed, raised with its reason)."""
        deadline = time.monotonic() + timeout
        while True:
            endpoint = self.get(name)
            status = endpoint["status"]
            if status["state"] == "InService":
                return endpoint
            if status["state"] == "Failed":
                raise StratoError(f"endpoint {name!r} failed: {status.get('message', '')}")
            if time.monotonic() > deadline:
                raise Timeout(
                    f"endpoint {name!r} is still {status['state']} after {timeout:g}s: {status.get('message', '')}"
                )
            time.sleep(poll)

    def invoke(self, name: str, data: Any, *, content_type: str = "application/json") -> Any:
        """Send one request (a dict/list as JSON, bytes or str as they are) and return the decoded answer."""
        body = (
            data if isinstance(data, bytes) else data.encode() if isinstance(data, str) else json.dumps(data).encode()
        )
        response = self.transport.request(
            "POST", f"/endpoints/{name}/invocations", content=body, headers={"content-type": content_type}
        )
        return response.json()
