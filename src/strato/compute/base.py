"""The compute backend contract: the only layer that starts, watches or kills processes.

A backend runs *tasks*: one command with an environment and declared resources. Tasks are addressed
by an opaque id, logs and usage are read through the backend, and nothing assumes the caller shares a
local disk with the task (so a Ray backend fits). ``submit`` either starts the task now or raises
``CapacityUnavailable`` so the caller (a reconciler) keeps its resource pending and retries in order;
a request that can never fit raises ``ResourcesImpossible`` from ``check_fits``.

Distributed jobs run as a *gang*: ``submit_gang`` starts all of its tasks now or none of them (a
half-started gang would hold capacity while its workers wait forever for the missing ones), and
``check_fits_gang`` says at apply time when the whole gang can never fit. ``submit`` is a gang of one,
so each backend has one start path. ``rendezvous`` says where the workers of a gang can meet.

Everything a backend knows about a started task must survive a restart of the control plane: a new
backend object over the same workspace reports the same tasks (``status``), streams their logs and can
stop them. That is what lets a killed control plane re-adopt running jobs.
"""

from __future__ import annotations

import abc
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from strato.errors import InvalidArgument, ResourcesImpossible
from strato.units import format_bytes


class CapacityUnavailable(Exception):  # a signal to wait, not an error for users (so no Error suffix)
    """Not enough free capacity right now; try again when a task ends."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TaskResources:
    cpus: float = 1.0
    memory: int = 512 * 1024**2  # bytes
    gpus: int = 0


@dataclass(frozen=True)
class TaskSpec:
    """One process to run. ``secret_env`` is passed to the process but never written anywhere by the
    backend, and its values are masked in the captured log."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    resources: TaskResources = field(default_factory=TaskResources)
    secret_env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    log_max_bytes: int | None = None  # None: the backend's default


class TaskState(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # exit code 0
    FAILED = "FAILED"  # non-zero exit code or killed by a signal
    LOST = "LOST"  # the process vanished without a recorded exit (machine or control plane trouble)

    @property
    def finished(self) -> bool:
        return self is not TaskState.RUNNING


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    state: TaskState
    exit_code: int | None = None  # 128+N when killed by signal N, as a shell reports it
    started_at: float | None = None  # unix seconds
    ended_at: float | None = None
    message: str = ""
    stopped: bool = False  # ended because ``stop`` was called
    peak_memory: int | None = None  # bytes, max resident set size of the task's processes
    cpu_seconds: float | None = None  # user + system CPU time


@dataclass(frozen=True)
class UsageSample:
    """A point-in-time sample of a running task's processes (all of its process tree)."""

    timestamp: float
    cpu_percent: float  # 100 = one core busy
    memory: int  # resident bytes now
    peak_memory: int  # highest resident bytes seen so far


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    next_offset: int
    complete: bool  # the task ended and every byte of its log has been returned


class ComputeBackend(abc.ABC):
    """Interface every backend implements; ``tests/contract/test_compute_backends.py`` holds it to it."""

    name: str = ""

    def __init__(self) -> None:
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(task_id)`` is called (from any thread) when a task changes state, so the control
        plane can reconcile at once instead of waiting for its next tick."""
        self._listeners.append(callback)

    def _notify(self, task_id: str) -> None:
        for callback in list(self._listeners):
            callback(task_id)

    @abc.abstractmethod
    def capacity(self) -> TaskResources:
        """Everything this backend can hand out at once."""

    @abc.abstractmethod
    def free(self) -> TaskResources:
        """What is not held by running tasks now."""

    def check_fits(self, resources: TaskResources) -> None:
        """Raise ``ResourcesImpossible`` naming the resource when a request can never be satisfied."""
        total = self.capacity()
        for what, asked, have, unit in (
            ("cpus", resources.cpus, total.cpus, ""),
            ("memory", resources.memory, total.memory, " bytes"),
            ("gpus", resources.gpus, total.gpus, ""),
        ):
            if asked > have:
                raise ResourcesImpossible(
                    f"resources.{what}: asks for {asked:g}{unit} but the {self.name} compute backend has "
                    f"{have:g}{unit} in all; lower resources.{what} or use a bigger compute target",
                    details={"resource": what, "requested": asked, "available": have},
                )

    def check_fits_gang(self, resources: TaskResources, count: int) -> None:
        """Raise ``ResourcesImpossible`` when ``count`` tasks of ``resources`` each can never run at
        once (one of them alone does not fit, or all together exceed the capacity)."""
        self.check_fits(resources)
        if count <= 1:
            return
        total = self.capacity()

        def units(value: float, unit: str) -> str:
            return f"{value:g} {unit}" + ("" if value == 1 else "s")

        for what, each, have, show in (
            ("cpus", resources.cpus, total.cpus, lambda v: units(v, "cpu")),
            ("memory", resources.memory, total.memory, lambda v: f"{format_bytes(v)} of memory"),
            ("gpus", resources.gpus, total.gpus, lambda v: units(v, "gpu")),
        ):
            need = each * count
            if need > have + 1e-9:
                raise ResourcesImpossible(
                    f"instance_count: {count} workers of {show(each)} each need {show(need)} at once, but the "
                    f"{self.name} compute backend has {show(have)} in all; lower instance_count or "
                    f"resources.{what}, or use a bigger compute target",
                    details={"resource": what, "instance_count": count, "requested": need, "available": have},
                )

    def validate(self, spec: TaskSpec) -> None:
        """What every ``submit`` checks first: a command to run, and resources that can ever fit."""
        if not spec.command:
            raise InvalidArgument("the task's command is empty; give the program to run and its arguments")
        self.check_fits(spec.resources)

    def validate_gang(self, specs: list[TaskSpec]) -> None:
        """``validate`` for each task of a gang, and the gang as a whole must fit at once."""
        if not specs:
            raise InvalidArgument("a gang needs at least one task")
        for spec in specs:
            self.validate(spec)
        if len({spec.resources for spec in specs}) == 1:
            self.check_fits_gang(specs[0].resources, len(specs))
        else:
            self.check_fits(
                TaskResources(
                    cpus=sum(s.resources.cpus for s in specs),
                    memory=sum(s.resources.memory for s in specs),
                    gpus=sum(s.resources.gpus for s in specs),
                )
            )

    def submit(self, spec: TaskSpec) -> str:
        """Start the task now and return its id, or raise ``CapacityUnavailable``."""
        return self.submit_gang([spec])[0]

    @abc.abstractmethod
    def submit_gang(self, specs: list[TaskSpec]) -> list[str]:
        """Start every task now and return their ids in order, or start none and raise
        ``CapacityUnavailable``: capacity for the whole gang is reserved before the first one starts,
        and if one fails to start the others are killed and everything is given back."""

    def rendezvous(self, count: int) -> tuple[str, list[int]]:
        """An address and ``count`` distinct free ports where the tasks of one gang can meet (the
        torch ``MASTER_ADDR``/``MASTER_PORT``, Vertex's cluster spec). The default suits backends whose
        tasks all run on this machine; one whose tasks run elsewhere overrides it.

        The ports are free when chosen, not reserved: another program may take one before the gang
        binds it (then the gang fails to meet and is retried by its job's policy). All ``count`` sockets
        are open together, so the ports differ from each other."""
        with contextlib.ExitStack() as stack:
            ports = []
            for _ in range(count):
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind(("127.0.0.1", 0))
                ports.append(int(sock.getsockname()[1]))
        return "127.0.0.1", ports

    @abc.abstractmethod
    def status(self, task_id: str) -> TaskStatus:
        """Current state. Unknown ids raise ``NotFound``."""

    @abc.abstractmethod
    def stop(self, task_id: str, grace: float) -> None:
        """SIGTERM (or the substrate's equivalent) now, SIGKILL after ``grace`` seconds. Idempotent;
        returns at once."""

    def interrupt(self, task_id: str, notice: float) -> None:
        """A spot interruption as clouds deliver it: a notice the task can read (``strato.runtime.
        interruption_notice()``, from the file ``$STRATO_CONTROL_DIR/notice.json``), SIGTERM now, and
        SIGKILL when the notice runs out."""
        self.deliver_notice(task_id, {"deadline": time.time() + notice, "notice_seconds": notice})
        self.stop(task_id, notice)

    @abc.abstractmethod
    def deliver_notice(self, task_id: str, notice: dict[str, float]) -> None:
        """Make ``notice`` readable by the task as ``$STRATO_CONTROL_DIR/notice.json``."""

    @abc.abstractmethod
    def logs(self, task_id: str, offset: int = 0, limit: int = 1024 * 1024) -> LogChunk:
        """Captured stdout+stderr (interleaved) from byte ``offset``."""

    @abc.abstractmethod
    def usage(self, task_id: str) -> UsageSample | None:
        """Latest usage sample of a running task (None when it is not running)."""

    @abc.abstractmethod
    def release(self, task_id: str) -> None:
        """Forget a finished task and delete its scratch space. Idempotent."""

    @abc.abstractmethod
    def list_tasks(self) -> list[str]:
        """Ids of every task not yet released."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends have nothing to stop
        """Stop background threads. Running tasks keep running (they are re-adopted later)."""
