"""``strato.connect()``: a typed client for a control plane, started in the home when none runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from strato.client.batch import BatchClient
from strato.client.cost import CostClient
from strato.client.endpoints import EndpointsClient
from strato.client.features import FeaturesClient
from strato.client.http import Transport
from strato.client.jobs import JobsClient
from strato.client.lineage import LineageClient
from strato.client.models import ModelsClient
from strato.client.pipelines import PipelinesClient
from strato.client.tuning import TuningClient
from strato.config import load_settings
from strato.errors import Timeout
from strato.specs import ResourceSpec, TrainingJob, TuningJob, parse_spec
from strato.specs.batch_transform import BatchTransformJob
from strato.specs.endpoint import Endpoint
from strato.specs.pipeline import Pipeline


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        self.url = url
        self.transport = Transport(url, token, timeout)
        self.jobs = JobsClient(self.transport)
        self.tuning = TuningClient(self.transport)
        self.lineage = LineageClient(self.transport)
        self.models = ModelsClient(self.transport)
        self.endpoints = EndpointsClient(self.transport)
        self.batch = BatchClient(self.transport)
        self.features = FeaturesClient(self.transport)
        self.cost = CostClient(self.transport)
        self.pipelines = PipelinesClient(self.transport)

    def apply(self, spec: ResourceSpec | dict[str, Any], *, base_dir: str | Path = ".") -> dict[str, Any]:
        """Create any resource from a spec object or a dict (what a YAML document holds)."""
        if isinstance(spec, dict):
            spec = parse_spec(spec)
        if isinstance(spec, TrainingJob):  # uploads its local code and inputs first
            return self.jobs.submit(spec, base_dir=base_dir).data
        if isinstance(spec, TuningJob):  # uploads its template's local code and inputs first
            return self.tuning.submit(spec, base_dir=base_dir).data
        if isinstance(spec, BatchTransformJob):  # local model, input and output, relative to the spec file
            return self.batch.submit(spec, base_dir=base_dir)
        if isinstance(spec, Pipeline):  # local code and inputs of its steps, relative to the spec file
            return self.pipelines.apply(spec, base_dir=base_dir)
        if isinstance(spec, Endpoint):  # local model directories, relative to the spec file
            return self.endpoints.apply(spec, base_dir=base_dir)
        return dict(self.transport.json("POST", "/api/v1/apply", json=spec.model_dump(mode="json"))["resource"])

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.transport.json("GET", f"/api/v1/{kind}/{name}"))

    def list(self, kind: str) -> list[dict[str, Any]]:
        return list(self.transport.json("GET", f"/api/v1/{kind}"))

    def delete(self, kind: str, name: str) -> None:
        self.transport.request("DELETE", f"/api/v1/{kind}/{name}")

    def health(self) -> dict[str, Any]:
        return dict(self.transport.json("GET", "/healthz"))

    def wait_ready(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the control plane's MLflow server is ready (or tracking is off): jobs submitted
        before then wait for it too, which a benchmark or a demo may not want to time."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            state = health.get("tracking", {}).get("state", "off")
            if state in ("ready", "off"):
                return health
            if time.monotonic() >= deadline:
                raise Timeout(
                    f"the MLflow tracking server is still {state} after {timeout:g}s; see its log: "
                    f"{health['tracking'].get('log')}"
                )
            time.sleep(0.2)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def connect(
    url: str | None = None, *, home: str | Path | None = None, token: str | None = None, start: bool = True
) -> Client:
    """Connect to ``url`` or ``STRATO_URL``; otherwise to the control plane of the home, starting it
    as a daemon when none runs (``start=False`` raises instead)."""
    settings = load_settings(home=home, url=url, token=token)
    token = settings.token or _home_token(settings.token_path)
    if settings.url:
        return Client(settings.url, token)
    from strato.server.daemon import read_info
    from strato.server.daemon import start as start_daemon

    info = read_info(settings)
    if info is None:
        if not start:
            from strato.errors import Unavailable

            raise Unavailable(f"no Strato control plane runs for home {settings.home}; start it with `strato up`")
        info = start_daemon(settings)
    return Client(info.url, token or _home_token(settings.token_path))


def _home_token(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, PermissionError):
        return os.environ.get("STRATO_TOKEN") or None
