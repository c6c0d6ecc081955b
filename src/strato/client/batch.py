"""Batch transform jobs from Python: submit (local paths made absolute), wait with progress, stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.client.http import Transport
from strato.errors import Timeout
from strato.specs.batch_transform import BatchTransformJob

REMOTE = ("models:/", "runs:/", "s3://", "mlflow-artifacts:/", "lake://")
TERMINAL = ("Completed", "Failed", "Stopped")


def with_local_paths(spec: BatchTransformJob, base_dir: str | Path) -> BatchTransformJob:
    def fix(path: str) -> str:
        return path if path.startswith(REMOTE) else str((Path(base_dir) / path.removeprefix("file://")).resolve())

    changes = {"model": fix(spec.model), "input": fix(spec.input)}
    if spec.output:
        changes["output"] = fix(spec.output)
    return spec.model_copy(update=changes)


class BatchClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def submit(self, spec: BatchTransformJob, *, base_dir: str | Path = ".") -> dict[str, Any]:
        body = with_local_paths(spec, base_dir).model_dump(mode="json")
        return dict(self.transport.json("POST", "/api/v1/apply", json=body)["resource"])

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.transport.json("GET", f"/api/v1/batchtransformjobs/{name}"))

    def stop(self, name: str) -> dict[str, Any]:
        return dict(self.transport.json("POST", f"/api/v1/batchtransformjobs/{name}/stop"))

    def wait(
        self,
        name: str,
        *,
        timeout: float | None = None,
        poll: float = 0.5,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Until the job ends (any terminal state); ``on_progress`` sees the job at every poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(name)
            if on_progress is not None:
                on_progress(job)
            if job["status"]["state"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"batch transform job {name!r} is still {job['status']['state']} after {timeout:g}s")
            time.sleep(poll)
