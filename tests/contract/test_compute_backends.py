"""One suite every compute backend must pass.

A *driver* per backend makes a running task print or end on demand, so the same test reads the same on
a backend of real processes (``local``) and on the in-memory one the reconciler tests use (``fake``).
Conditions are awaited by polling with a generous deadline; nothing sleeps to pass.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strato.compute import (
    CapacityUnavailable,
    ComputeBackend,
    FakeBackend,
    LocalBackend,
    TaskResources,
    TaskSpec,
    TaskState,
    UsageSample,
)
from strato.errors import Conflict, NotFound, ResourcesImpossible

GiB = 1024**3
DEADLINE = 30.0  # seconds; generous because CI machines have two busy cores


def wait_until(predicate: Callable[[], object], timeout: float = DEADLINE, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


# A task for the local backend that obeys numbered files in a control directory: "say:<text>" prints
# the text, "exit:<code>" exits with that code. (The task polls; the test never sleeps to wait.)
_OBEDIENT_TASK = r"""
import os, sys, time
ctl, n = sys.argv[1], 0
while True:
    path = os.path.join(ctl, str(n))
    if not os.path.exists(path):
        time.sleep(0.01)
        continue
    n += 1
    with open(path, encoding="utf-8") as f:
        kind, _, arg = f.read().partition(":")
    if kind == "say":
        sys.stdout.write(arg)
        sys.stdout.flush()
    else:
        sys.exit(int(arg))
"""


class Driver:
    backend: ComputeBackend

    def submit(self, resources: TaskResources | None = None, secret_env: dict[str, str] | None = None) -> str:
        raise NotImplementedError

    def submit_gang(self, count: int, resources: TaskResources | None = None) -> list[str]:
        raise NotImplementedError

    def say(self, task_id: str, text: str) -> None:
        raise NotImplementedError

    def end(self, task_id: str, exit_code: int) -> None:
        raise NotImplementedError

    def wait_finished(self, task_id: str) -> None:
        wait_until(lambda: self.backend.status(task_id).state.finished, what=f"{task_id} to finish")


class LocalDriver(Driver):
    def __init__(self, backend: LocalBackend, ctl_root: Path):
        self.backend = backend
        self._ctl_root = ctl_root
        self._ctl: dict[str, Path] = {}
        self._counters: dict[str, itertools.count[int]] = {}
        self._dirs = itertools.count()

    def _spec(self, resources: TaskResources | None, secret_env: dict[str, str] | None) -> tuple[TaskSpec, Path]:
        ctl = self._ctl_root / str(next(self._dirs))
        ctl.mkdir(parents=True)
        spec = TaskSpec(
            command=[sys.executable, "-c", _OBEDIENT_TASK, str(ctl)],
            resources=resources or TaskResources(),
            secret_env=secret_env or {},
        )
        return spec, ctl

    def submit(self, resources: TaskResources | None = None, secret_env: dict[str, str] | None = None) -> str:
        spec, ctl = self._spec(resources, secret_env)
        task_id = self.backend.submit(spec)
        self._ctl[task_id], self._counters[task_id] = ctl, itertools.count()
        return task_id

    def submit_gang(self, count: int, resources: TaskResources | None = None) -> list[str]:
        specs, ctls = zip(*(self._spec(resources, None) for _ in range(count)), strict=True)
        task_ids = self.backend.submit_gang(list(specs))
        for task_id, ctl in zip(task_ids, ctls, strict=True):
            self._ctl[task_id], self._counters[task_id] = ctl, itertools.count()
        return task_ids

    def _order(self, task_id: str, order: str) -> None:
        ctl = self._ctl[task_id]
        tmp = ctl / "tmp"
        tmp.write_text(order, encoding="utf-8")
        os.replace(tmp, ctl / str(next(self._counters[task_id])))  # whole files only, never half a one

    def say(self, task_id: str, text: str) -> None:
        self._order(task_id, f"say:{text}")

    def end(self, task_id: str, exit_code: int) -> None:
        self._order(task_id, f"exit:{exit_code}")


class FakeDriver(Driver):
    def __init__(self, backend: FakeBackend):
        self.backend = backend
        self.fake = backend

    def submit(self, resources: TaskResources | None = None, secret_env: dict[str, str] | None = None) -> str:
        spec = TaskSpec(["train"], resources=resources or TaskResources(), secret_env=secret_env or {})
        return self.backend.submit(spec)

    def submit_gang(self, count: int, resources: TaskResources | None = None) -> list[str]:
        return self.backend.submit_gang([TaskSpec(["train"], resources=resources or TaskResources())] * count)

    def say(self, task_id: str, text: str) -> None:
        self.fake.emit_log(task_id, text)

    def end(self, task_id: str, exit_code: int) -> None:
        self.fake.finish(task_id, exit_code)


CAPACITY = TaskResources(cpus=2, memory=2 * GiB)


@pytest.fixture(params=["local", "fake"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    d: Driver
    if request.param == "local":
        backend = LocalBackend(tmp_path / "runs", cpus=CAPACITY.cpus, memory=CAPACITY.memory, sample_interval=0.2)
        d = LocalDriver(backend, tmp_path / "ctl")
    else:
        d = FakeDriver(FakeBackend(CAPACITY))
    yield d
    for task_id in d.backend.list_tasks():  # leave no process behind
        if not d.backend.status(task_id).state.finished:
            d.backend.stop(task_id, grace=0)
            d.wait_finished(task_id)
    d.backend.close()


def read_all_logs(backend: ComputeBackend, task_id: str) -> bytes:
    return backend.logs(task_id, 0, 1 << 30).data


def test_a_task_runs_then_succeeds(driver: Driver) -> None:
    backend = driver.backend
    task_id = driver.submit()
    status = backend.status(task_id)
    assert status.state is TaskState.RUNNING
    assert status.started_at is not None
    assert task_id in backend.list_tasks()

    driver.end(task_id, 0)
    driver.wait_finished(task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.SUCCEEDED
    assert status.exit_code == 0
    assert status.ended_at is not None
    assert not status.stopped


def test_a_non_zero_exit_fails_with_its_code(driver: Driver) -> None:
    task_id = driver.submit()
    driver.end(task_id, 3)
    driver.wait_finished(task_id)

    status = driver.backend.status(task_id)
    assert status.state is TaskState.FAILED
    assert status.exit_code == 3
    assert "3" in status.message


def test_logs_stream_incrementally_with_offsets(driver: Driver) -> None:
    backend = driver.backend
    task_id = driver.submit()

    driver.say(task_id, "hello\n")
    wait_until(lambda: b"hello\n" in read_all_logs(backend, task_id), what="the first line")
    first = backend.logs(task_id, 0)
    assert first.data == b"hello\n"
    assert first.next_offset == 6
    assert not first.complete  # still running: more may come

    assert backend.logs(task_id, 0, limit=3).data == b"hel"
    assert backend.logs(task_id, 0, limit=3).next_offset == 3

    driver.say(task_id, "world\n")
    wait_until(lambda: backend.logs(task_id, first.next_offset).data == b"world\n", what="the second line")

    driver.end(task_id, 0)
    driver.wait_finished(task_id)
    last = backend.logs(task_id, first.next_offset)
    assert last.data == b"world\n"
    assert last.complete
    assert backend.logs(task_id, last.next_offset) == type(last)(b"", last.next_offset, True)
    assert not backend.logs(task_id, 0, limit=3).complete  # complete means every byte was returned


def test_secret_values_are_masked_in_logs(driver: Driver) -> None:
    task_id = driver.submit(secret_env={"API_TOKEN": "tok-123-secret"})
    driver.say(task_id, "token is tok-123-secret, twice: tok-123-secret\n")
    driver.end(task_id, 0)
    driver.wait_finished(task_id)

    assert read_all_logs(driver.backend, task_id) == b"token is ***, twice: ***\n"


def test_stop_ends_the_task_and_marks_it_stopped(driver: Driver) -> None:
    backend = driver.backend
    task_id = driver.submit()

    backend.stop(task_id, grace=30)
    driver.wait_finished(task_id)

    status = backend.status(task_id)
    assert status.stopped
    assert status.state is TaskState.FAILED
    assert status.exit_code == 143  # died of SIGTERM, as a shell reports it
    assert status.ended_at is not None
    backend.stop(task_id, grace=30)  # idempotent on a finished task
    assert backend.status(task_id).exit_code == 143


def test_stop_of_a_finished_task_does_not_mark_it_stopped(driver: Driver) -> None:
    task_id = driver.submit()
    driver.end(task_id, 0)
    driver.wait_finished(task_id)

    driver.backend.stop(task_id, grace=0)
    assert not driver.backend.status(task_id).stopped


def test_capacity_is_held_while_running_and_freed_after(driver: Driver) -> None:
    backend = driver.backend
    one_cpu = TaskResources(cpus=1, memory=512 * 1024**2)
    first = driver.submit(one_cpu)
    driver.submit(one_cpu)
    assert backend.free().cpus == 0

    with pytest.raises(CapacityUnavailable) as caught:
        driver.submit(one_cpu)
    assert "needs 1 cpu and 512.0MiB" in caught.value.message
    assert "0 cpu" in caught.value.message and "free of 2 cpu" in caught.value.message

    driver.end(first, 0)
    driver.wait_finished(first)
    wait_until(lambda: backend.free().cpus == 1, what="the finished task's cpu to be freed")
    third = driver.submit(one_cpu)
    assert backend.status(third).state is TaskState.RUNNING


def test_a_request_larger_than_the_backend_is_impossible(driver: Driver) -> None:
    with pytest.raises(ResourcesImpossible) as caught:
        driver.submit(TaskResources(cpus=64))
    assert "resources.cpus" in caught.value.message
    assert caught.value.details["requested"] == 64

    with pytest.raises(ResourcesImpossible) as caught:
        driver.submit(TaskResources(memory=64 * GiB))
    assert "resources.memory" in caught.value.message
    assert driver.backend.list_tasks() == []


def test_unknown_task_ids_are_not_found(driver: Driver) -> None:
    backend = driver.backend
    for call in (
        lambda: backend.status("no-such-task"),
        lambda: backend.logs("no-such-task"),
        lambda: backend.stop("no-such-task", grace=1),
        lambda: backend.usage("no-such-task"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert "no-such-task" in caught.value.message
    backend.release("no-such-task")  # releasing is idempotent


def test_release_forgets_a_finished_task(driver: Driver) -> None:
    backend = driver.backend
    task_id = driver.submit()
    with pytest.raises(Conflict):
        backend.release(task_id)  # still running

    driver.end(task_id, 0)
    driver.wait_finished(task_id)
    backend.release(task_id)

    assert task_id not in backend.list_tasks()
    with pytest.raises(NotFound):
        backend.status(task_id)
    backend.release(task_id)


def test_usage_is_sampled_while_running_only(driver: Driver) -> None:
    backend = driver.backend
    task_id = driver.submit()
    sample = backend.usage(task_id)
    assert isinstance(sample, UsageSample)
    assert sample.peak_memory >= sample.memory >= 0

    driver.end(task_id, 0)
    driver.wait_finished(task_id)
    assert backend.usage(task_id) is None


def test_listeners_are_notified_when_a_task_finishes(driver: Driver) -> None:
    notified: list[str] = []
    driver.backend.add_listener(notified.append)
    task_id = driver.submit()

    driver.end(task_id, 0)
    wait_until(lambda: task_id in notified, what="the listener to be called")
    assert driver.backend.status(task_id).state is TaskState.SUCCEEDED


# Gangs: the tasks of a distributed job start together or not at all --------------------------------------
ONE_CPU = TaskResources(cpus=1, memory=512 * 1024**2)


def test_a_gang_starts_every_task_at_once(driver: Driver) -> None:
    backend = driver.backend
    task_ids = driver.submit_gang(2, ONE_CPU)
    assert len(set(task_ids)) == 2
    assert [backend.status(t).state for t in task_ids] == [TaskState.RUNNING] * 2
    assert backend.free().cpus == 0
    for number, task_id in enumerate(task_ids):  # each task has its own log
        driver.say(task_id, f"worker {number}\n")
    for number, task_id in enumerate(task_ids):
        wait_until(lambda t=task_id, n=number: read_all_logs(backend, t) == f"worker {n}\n".encode(), what="logs")
    for task_id in task_ids:
        driver.end(task_id, 0)
    for task_id in task_ids:
        driver.wait_finished(task_id)
    wait_until(lambda: backend.free().cpus == 2, what="the gang's cpus to be freed")


def test_a_gang_that_does_not_fit_now_starts_nothing(driver: Driver) -> None:
    backend = driver.backend
    driver.submit(ONE_CPU)
    before = backend.list_tasks()
    with pytest.raises(CapacityUnavailable) as caught:
        driver.submit_gang(2, ONE_CPU)
    assert caught.value.message == (
        "needs 2 tasks at once, 2 cpu and 1.0GiB in all; 1 cpu and 1.5GiB free of 2 cpu and 2.0GiB"
    )
    assert backend.list_tasks() == before and backend.free().cpus == 1  # nothing started, nothing held


def test_a_gang_that_can_never_fit_is_impossible(driver: Driver) -> None:
    with pytest.raises(ResourcesImpossible) as caught:
        driver.submit_gang(3, ONE_CPU)
    assert caught.value.message.startswith(
        f"instance_count: 3 workers of 1 cpu each need 3 cpus at once, but the {driver.backend.name} compute "
        "backend has 2 cpus in all"
    )
    assert caught.value.details["instance_count"] == 3
    assert driver.backend.list_tasks() == []
    driver.backend.check_fits_gang(ONE_CPU, 2)  # exactly the capacity fits


def test_rendezvous_gives_distinct_free_ports(driver: Driver) -> None:
    import socket

    addr, ports = driver.backend.rendezvous(3)
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((addr, port))  # free: a worker can listen on it
