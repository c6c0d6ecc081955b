"""An in-memory backend for unit tests of reconcilers: no processes, the test decides what happens.

Tasks start RUNNING and stay so until the test calls ``finish``, ``lose`` or ``stop``. It honours
capacity exactly like a real backend (``CapacityUnavailable``, ``ResourcesImpossible``), masks secret
values in logs, and calls the listeners on every change of state, so code tested against it behaves
the same on the local backend (the contract suite holds both to that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from strato.compute.base import (
    ComputeBackend,
    LogChunk,
    TaskResources,
    TaskSpec,
    TaskState,
    TaskStatus,
    UsageSample,
)
from strato.compute.slots import Slots
from strato.errors import Conflict, NotFound

STOPPED_EXIT_CODE = 143  # 128 + SIGTERM, what a process that dies of the stop signal reports


@dataclass
class _FakeTask:
    spec: TaskSpec
    started_at: float
    state: TaskState = TaskState.RUNNING
    exit_code: int | None = None
    ended_at: float | None = None
    message: str = ""
    stopped: bool = False
    log: bytearray = field(default_factory=bytearray)
    usage: UsageSample | None = None


class FakeBackend(ComputeBackend):
    name = "fake"

    def __init__(
        self,
        capacity: TaskResources | None = None,
        *,
        stop_delay: bool = False,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__()
        self._slots = Slots(capacity or TaskResources(cpus=4, memory=16 * 1024**3, gpus=0))
        self._stop_delay = stop_delay
        self._clock = clock
        self._lock = threading.RLock()
        self._tasks: dict[str, _FakeTask] = {}
        self._counter = 0
        self.submitted: list[tuple[str, TaskSpec]] = []  # every accepted submit, in order
        self.gangs: list[list[str]] = []  # the ids of every accepted submit_gang (a submit is a gang of one)
        self.stops: list[tuple[str, float]] = []  # every stop call: (task_id, grace)
        self.notices: list[tuple[str, dict[str, float]]] = []  # every interruption notice delivered

    # Capacity ---------------------------------------------------------------------------------
    def capacity(self) -> TaskResources:
        return self._slots.capacity

    def free(self) -> TaskResources:
        with self._lock:
            return self._slots.free()

    # The contract -----------------------------------------------------------------------------
    def submit_gang(self, specs: list[TaskSpec]) -> list[str]:
        self.validate_gang(specs)
        with self._lock:
            ids = [f"fake-{self._counter + n}" for n in range(1, len(specs) + 1)]
            self._slots.reserve_all([(task_id, spec.resources) for task_id, spec in zip(ids, specs, strict=True)])
            self._counter += len(specs)
            for task_id, spec in zip(ids, specs, strict=True):
                self._tasks[task_id] = _FakeTask(spec=spec, started_at=self._clock())
                self.submitted.append((task_id, spec))
            self.gangs.append(ids)
        return ids

    def status(self, task_id: str) -> TaskStatus:
        with self._lock:
            task = self._get(task_id)
            return TaskStatus(
                task_id,
                task.state,
                exit_code=task.exit_code,
                started_at=task.started_at,
                ended_at=task.ended_at,
                message=task.message,
                stopped=task.stopped,
                peak_memory=task.usage.peak_memory if task.usage else None,
                cpu_seconds=None,
            )

    def stop(self, task_id: str, grace: float) -> None:
        with self._lock:
            task = self._get(task_id)
            self.stops.append((task_id, grace))
            if task.state.finished:
                return
            task.stopped = True
        if not self._stop_delay:
            self.finish(task_id, STOPPED_EXIT_CODE)

    def deliver_notice(self, task_id: str, notice: dict[str, float]) -> None:
        with self._lock:
            self._get(task_id)
            self.notices.append((task_id, dict(notice)))

    def logs(self, task_id: str, offset: int = 0, limit: int = 1024 * 1024) -> LogChunk:
        with self._lock:
            task = self._get(task_id)
            data = bytes(task.log[offset : offset + max(0, limit)])
            next_offset = offset + len(data)
            return LogChunk(data, next_offset, complete=task.state.finished and next_offset >= len(task.log))

    def usage(self, task_id: str) -> UsageSample | None:
        with self._lock:
            task = self._get(task_id)
            if task.state.finished:
                return None
            return task.usage or UsageSample(timestamp=self._clock(), cpu_percent=0.0, memory=0, peak_memory=0)

    def release(self, task_id: str) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            if not task.state.finished:
                raise Conflict(f"task {task_id!r} is still running; stop it and wait for it to end before releasing it")
            del self._tasks[task_id]

    def list_tasks(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    # Test helpers -----------------------------------------------------------------------------
    def finish(self, task_id: str, exit_code: int = 0) -> None:
        """End a running task as if its process exited with ``exit_code``."""
        with self._lock:
            task = self._get(task_id)
            if task.state.finished:
                return
            task.state = TaskState.SUCCEEDED if exit_code == 0 else TaskState.FAILED
            self._slots.release(task_id)
            task.exit_code = exit_code
            task.ended_at = self._clock()
            task.message = f"{'stopped; ' if task.stopped else ''}exited with code {exit_code}"
        self._notify(task_id)

    def lose(self, task_id: str, message: str = "the fake task vanished") -> None:
        """End a running task as if its process vanished (machine or control plane trouble)."""
        with self._lock:
            task = self._get(task_id)
            if task.state.finished:
                return
            task.state, task.ended_at, task.message = TaskState.LOST, self._clock(), message
            self._slots.release(task_id)
        self._notify(task_id)

    def emit_log(self, task_id: str, text: str | bytes) -> None:
        """Append output, masking secret values as a real backend does."""
        data = text.encode() if isinstance(text, str) else text
        with self._lock:
            task = self._get(task_id)
            for value in sorted(task.spec.secret_env.values(), key=len, reverse=True):
                if value:
                    data = data.replace(value.encode(), b"***")
            task.log += data

    def set_usage(self, task_id: str, cpu_percent: float, memory: int) -> None:
        with self._lock:
            task = self._get(task_id)
            peak = max(memory, task.usage.peak_memory if task.usage else 0)
            task.usage = UsageSample(timestamp=self._clock(), cpu_percent=cpu_percent, memory=memory, peak_memory=peak)

    def _get(self, task_id: str) -> _FakeTask:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise NotFound(f"task {task_id!r} not found in the fake compute backend") from None
