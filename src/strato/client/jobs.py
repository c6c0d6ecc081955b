"""Training jobs through the SDK: submit, look up, follow logs, wait, stop."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strato.client.handle import LONG_POLL, ResourceHandle
from strato.client.http import Transport
from strato.client.uploads import resolve_local_paths
from strato.errors import Timeout
from strato.specs import TrainingJob


class Job(ResourceHandle):
    """A handle on one training job; ``refresh()`` re-reads it, ``wait()`` blocks until it ends."""

    def __init__(self, jobs: JobsClient, data: dict[str, Any]):
        super().__init__(data)
        self._jobs = jobs

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of each metric."""
        return dict(self.data["status"].get("metrics", {}))

    @property
    def model_uri(self) -> str | None:
        return self.data["status"].get("model_uri")

    @property
    def cost(self) -> float | None:
        """Cost in USD, once the cost engine prices this job."""
        return self.data["status"].get("cost")

    def refresh(self) -> Job:
        self.data = self._jobs.get(self.name).data
        return self

    def wait(self, timeout: float | None = None) -> Job:
        return self._jobs.wait(self.name, timeout=timeout, job=self)

    def logs(self, follow: bool = False, worker: int = 0) -> Iterator[str]:
        return self._jobs.logs(self.name, follow=follow, worker=worker)

    def stop(self) -> Job:
        self.data = self._jobs.stop(self.name).data
        return self


class JobsClient:
    def __init__(self, transport: Transport):
        self._t = transport

    def submit(self, spec: TrainingJob, *, base_dir: str | Path = ".") -> Job:
        """Upload local code and inputs, then store the job (the control plane starts it)."""
        spec = resolve_local_paths(spec, self._t, Path(base_dir))
        body = self._t.json("POST", "/api/v1/apply", json=spec.model_dump(mode="json"))
        return Job(self, body["resource"])

    def get(self, name: str) -> Job:
        return Job(self, self._t.json("GET", f"/api/v1/jobs/{name}"))

    def list(self) -> list[Job]:
        return [Job(self, item) for item in self._t.json("GET", "/api/v1/jobs")]

    def stop(self, name: str) -> Job:
        return Job(self, self._t.json("POST", f"/api/v1/jobs/{name}/stop"))

    def interrupt(self, name: str, notice: float | None = None) -> Job:
        """Interrupt a running job as a spot reclaim would (notice, SIGTERM, kill, then recovery)."""
        params = {"notice": notice} if notice is not None else None
        return Job(self, self._t.json("POST", f"/api/v1/jobs/{name}/interrupt", params=params))

    def delete(self, name: str) -> None:
        self._t.request("DELETE", f"/api/v1/jobs/{name}")

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        return list(self._t.json("GET", f"/api/v1/jobs/{name}/events"))

    def metric_history(self, name: str, metric: str | None = None) -> builtins.list[dict[str, Any]]:
        params = {"name": metric} if metric else None
        return list(self._t.json("GET", f"/api/v1/jobs/{name}/metrics", params=params))

    def wait(self, name: str, *, timeout: float | None = None, job: Job | None = None) -> Job:
        """Block until the job is Completed, Failed or Stopped (``Timeout`` after ``timeout`` seconds)."""
        job = job or self.get(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.done:
            remaining = LONG_POLL if deadline is None else min(LONG_POLL, deadline - time.monotonic())
            if remaining <= 0:
                raise Timeout(f"TrainingJob {name!r} is still {job.status} after {timeout:g}s")
            # The server answers as soon as the job ends (long poll), or after ``remaining`` seconds.
            job.data = self._t.json(
                "GET", f"/api/v1/jobs/{name}/wait", params={"timeout": remaining}, timeout=remaining + 30
            )
        return job

    def logs(
        self, name: str, *, follow: bool = False, attempt: int | None = None, worker: int = 0, poll: float = 0.5
    ) -> Iterator[str]:
        """Yield the log as text chunks; with ``follow``, keep yielding until the job ends. ``worker``
        picks one worker of a distributed job by rank (each worker's log is kept apart)."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset}
            if attempt:
                params["attempt"] = attempt
            if worker:
                params["worker"] = worker
            page = self._t.json("GET", f"/api/v1/jobs/{name}/logs", params=params)
            if page["data"]:
                yield page["data"]
            offset = page["next_offset"]
            if page["data"]:
                continue
            if not follow or page["complete"]:
                return
            time.sleep(poll)
