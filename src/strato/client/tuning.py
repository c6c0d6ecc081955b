"""Tuning jobs through the SDK: submit, look up, list trials, wait (with progress), stop, resume.

tuning = client.tuning.submit(strato.TuningJob(name="digits", template={...}, search_space={...},
                                               objective={"metric": "validation:accuracy",
                                                          "direction": "maximize"}))
tuning.wait(on_progress=print)
print(tuning.best)       # {"number": 3, "job": "digits-3", "hyperparameters": {...}, "objective": 0.97}
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.client.handle import LONG_POLL, ResourceHandle
from strato.client.http import Transport
from strato.client.uploads import resolve_local_paths
from strato.errors import Timeout
from strato.specs import TuningJob

BASE = "/api/v1/tuningjobs"


class Tuning(ResourceHandle):
    """A handle on one tuning job; ``refresh()`` re-reads it, ``wait()`` blocks until it ends."""

    def __init__(self, client: TuningClient, data: dict[str, Any]):
        super().__init__(data)
        self._client = client

    @property
    def best(self) -> dict[str, Any] | None:
        """The best completed trial: number, job, hyperparameters and objective (None before one)."""
        best = self.data["status"].get("best")
        return dict(best) if best else None

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.data["status"].get("counts", {}))

    def trials(self) -> list[dict[str, Any]]:
        return self._client.trials(self.name)

    def refresh(self) -> Tuning:
        self.data = self._client.get(self.name).data
        return self

    def wait(self, timeout: float | None = None, on_progress: Callable[[Tuning], None] | None = None) -> Tuning:
        return self._client.wait(self.name, timeout=timeout, tuning=self, on_progress=on_progress)

    def stop(self) -> Tuning:
        self.data = self._client.stop(self.name).data
        return self

    def resume(self) -> Tuning:
        self.data = self._client.resume(self.name).data
        return self


class TuningClient:
    def __init__(self, transport: Transport):
        self._t = transport

    def submit(self, spec: TuningJob, *, base_dir: str | Path = ".") -> Tuning:
        """Upload the template's local code and inputs (once for every trial), then store the tuning job."""
        template = resolve_local_paths(spec.template, self._t, Path(base_dir))
        if template is not spec.template:
            spec = spec.model_copy(update={"template": template})
        body = self._t.json("POST", "/api/v1/apply", json=spec.model_dump(mode="json"))
        return Tuning(self, body["resource"])

    def get(self, name: str) -> Tuning:
        return Tuning(self, self._t.json("GET", f"{BASE}/{name}"))

    def list(self) -> builtins.list[Tuning]:
        return [Tuning(self, item) for item in self._t.json("GET", BASE)]

    def trials(self, name: str) -> builtins.list[dict[str, Any]]:
        return list(self._t.json("GET", f"{BASE}/{name}/trials"))

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        return list(self._t.json("GET", f"{BASE}/{name}/events"))

    def stop(self, name: str) -> Tuning:
        return Tuning(self, self._t.json("POST", f"{BASE}/{name}/stop"))

    def resume(self, name: str) -> Tuning:
        return Tuning(self, self._t.json("POST", f"{BASE}/{name}/resume"))

    def delete(self, name: str) -> None:
        self._t.request("DELETE", f"{BASE}/{name}")

    def wait(
        self,
        name: str,
        *,
        timeout: float | None = None,
        tuning: Tuning | None = None,
        on_progress: Callable[[Tuning], None] | None = None,
        poll: float = 2.0,
    ) -> Tuning:
        """Block until the tuning job is Completed, Failed or Stopped (``Timeout`` after ``timeout``
        seconds). ``on_progress(tuning)`` is called after every change, and every ``poll`` seconds
        while it waits (the server answers a long poll at once when the tuning job's status changes)."""
        tuning = tuning or self.get(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not tuning.done:
            if on_progress is not None:
                on_progress(tuning)
            hold = LONG_POLL if on_progress is None else poll
            remaining = hold if deadline is None else min(hold, deadline - time.monotonic())
            if remaining <= 0:
                raise Timeout(f"TuningJob {name!r} is still {tuning.status} after {timeout:g}s")
            tuning.data = self._t.json(
                "GET", f"{BASE}/{name}/wait", params={"timeout": remaining}, timeout=remaining + 30
            )
        if on_progress is not None:
            on_progress(tuning)
        return tuning
