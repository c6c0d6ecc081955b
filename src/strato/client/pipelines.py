"""Pipelines from Python: apply (local code directories and input files snapshotted and uploaded, so a
step's code is content-addressed and an unchanged step keeps its cache hits), run, wait, stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.client.http import Transport
from strato.client.uploads import _is_local, _snapshot_path, upload_snapshot
from strato.errors import InvalidArgument, Timeout
from strato.specs.pipeline import Pipeline
from strato.specs.pipeline_run import PipelineRun

TERMINAL = ("Succeeded", "Failed", "Stopped")


def _local_paths(step: dict[str, Any], transport: Transport, base_dir: Path) -> dict[str, Any]:
    step = dict(step)
    holder = dict(step["job"]) if step.get("type") == "training" and step.get("job") else step
    code = holder.get("code")
    if code and _is_local(code):
        directory = (base_dir / code).resolve()
        if not directory.is_dir():
            raise InvalidArgument(
                f"step {step['name']!r}: code directory {code!r} does not exist (looked in {directory})"
            )
        holder["code"] = upload_snapshot(transport, directory)
    if "inputs" in step:
        step["inputs"] = _upload_inputs(step["inputs"], step["name"], transport, base_dir)
    if holder is not step:
        holder["inputs"] = _upload_inputs(holder.get("inputs") or {}, step["name"], transport, base_dir)
        step["job"] = holder
    return step


def _upload_inputs(inputs: dict[str, Any], step: str, transport: Transport, base_dir: Path) -> dict[str, Any]:
    """Local input paths snapshotted and uploaded (references and URIs stay as they are)."""
    resolved = dict(inputs)
    for channel, source in inputs.items():
        if isinstance(source, str) and _is_local(source) and "{{" not in source:
            path = (base_dir / source).resolve()
            if not path.exists():
                raise InvalidArgument(f"step {step!r}: input {channel} path {source!r} does not exist")
            resolved[channel] = _snapshot_path(transport, path)
    return resolved


class PipelinesClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def apply(self, spec: Pipeline, *, base_dir: str | Path = ".") -> dict[str, Any]:
        body = spec.model_dump(mode="json", exclude_none=True)
        body["steps"] = [_local_paths(step, self.transport, Path(base_dir)) for step in body["steps"]]
        return dict(self.transport.json("POST", "/api/v1/apply", json=body)["resource"])

    def run(
        self, pipeline: str, parameters: dict[str, Any] | None = None, *, name: str | None = None,
        no_cache: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        run = PipelineRun(
            name=name or f"{pipeline}-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}",
            pipeline=pipeline,
            parameters=parameters or {},
            no_cache=no_cache,
        )
        return dict(self.transport.json("POST", "/api/v1/apply", json=run.model_dump(mode="json"))["resource"])

    def resume(self, run: str, *, name: str | None = None) -> dict[str, Any]:
        """A new run of a failed or stopped run's pipeline that reuses its succeeded steps."""
        earlier = self.get(run)
        resumed = PipelineRun(
            name=name or f"{run[:50]}-resumed-{int(time.time()) % 100000}",
            pipeline=earlier["spec"]["pipeline"],
            resume_from=run,
        )
        return dict(self.transport.json("POST", "/api/v1/apply", json=resumed.model_dump(mode="json"))["resource"])

    def pause_schedule(self, name: str, paused: bool = True) -> dict[str, Any]:
        verb = "pause" if paused else "resume"
        return dict(self.transport.json("POST", f"/api/v1/pipelineschedules/{name}/{verb}"))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.transport.json("GET", f"/api/v1/pipelineruns/{name}"))

    def stop(self, name: str) -> dict[str, Any]:
        return dict(self.transport.json("POST", f"/api/v1/pipelineruns/{name}/stop"))

    def wait(
        self, name: str, *, timeout: float | None = None, poll: float = 0.2,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get(name)
            if on_progress is not None:
                on_progress(run)
            if run["status"]["state"] in TERMINAL:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"pipeline run {name} is still {run['status']['state']} after {timeout:g}s")
            time.sleep(poll)
