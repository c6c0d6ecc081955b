"""What only the local backend does: real processes, signals, log capping, secrets, re-adoption.

Each test runs small Python programs as tasks and waits for conditions by polling with a generous
deadline; the only fixed durations are stop grace periods, which the backend itself times.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strato.compute import LocalBackend, TaskResources, TaskSpec, TaskState, UsageSample
from strato.compute._shim import CappedLog, Masker

MiB = 1024**2
DEADLINE = 30.0


def wait_until(predicate: Callable[[], object], timeout: float = DEADLINE, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def python(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    secret_env: dict[str, str] | None = None,
    resources: TaskResources | None = None,
) -> TaskSpec:
    return TaskSpec(
        [sys.executable, "-c", code, *args],
        env=env or {},
        secret_env=secret_env or {},
        resources=resources or TaskResources(),
    )


# Prints "ready" once its SIGTERM disposition is set, then waits for the file named by argv[1].
WAIT_FOR_FILE = """
import os, sys, time
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print("released", flush=True)
"""


class Backends:
    """Makes backends over one run_dir and makes sure no task process outlives the test."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.made: list[LocalBackend] = []

    def __call__(self, log_max_bytes: int = 64 * MiB) -> LocalBackend:
        backend = LocalBackend(
            self.run_dir, cpus=2, memory=4 * 1024**3, log_max_bytes=log_max_bytes, sample_interval=0.2
        )
        self.made.append(backend)
        return backend

    def cleanup(self) -> None:
        for task_dir in self.run_dir.glob("*/pid.json"):
            pid = json.loads(task_dir.read_text())["pid"]
            if not (task_dir.parent / "exit.json").exists():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        for backend in self.made:
            backend.close()


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Backends]:
    made = Backends(tmp_path / "runs")
    yield made
    made.cleanup()


@pytest.fixture
def backend(backends: Backends) -> LocalBackend:
    return backends()


def finished(backend: LocalBackend, task_id: str) -> None:
    wait_until(lambda: backend.status(task_id).state.finished, what=f"{task_id} to finish")


def log_of(backend: LocalBackend, task_id: str) -> bytes:
    return backend.logs(task_id, 0, 1 << 30).data


def wait_for_log(backend: LocalBackend, task_id: str, text: bytes) -> None:
    wait_until(lambda: text in log_of(backend, task_id), what=f"{text!r} in the log")


# Secrets ------------------------------------------------------------------------------------------
def test_secret_values_are_masked_in_the_log_and_never_written_to_disk(backend: LocalBackend) -> None:
    secret = "hunter2-very-secret"
    spec = python(
        "import os, sys\n"
        "v = os.environ['DB_PASSWORD']\n"
        "print('password:', v)\n"
        "sys.stdout.write(v[:5]); sys.stdout.flush(); sys.stdout.write(v[5:] + '\\n'); sys.stdout.flush()\n"
        "print('plain:', os.environ['PLAIN'], file=sys.stderr)\n",
        env={"PLAIN": "visible"},
        secret_env={"DB_PASSWORD": secret},
    )
    task_id = backend.submit(spec)
    finished(backend, task_id)

    assert backend.status(task_id).state is TaskState.SUCCEEDED
    log = log_of(backend, task_id)
    assert b"password: ***\n" in log
    assert b"***\n***\n" in log  # also when written in two pieces
    assert b"plain: visible" in log  # stderr lands in the same log; only secrets are masked
    task_json = json.loads((backend.run_dir / task_id / "task.json").read_text())
    assert task_json["secret_env_names"] == ["DB_PASSWORD"]
    for path in (backend.run_dir / task_id).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"{path.name} holds the secret"


def test_the_masker_holds_back_only_what_could_become_a_secret() -> None:
    masker = Masker([b"abcdef", b""])
    assert masker.feed(b"hello ab") == b"hello "  # "ab" may be the start of the secret
    assert masker.feed(b"cd") == b""
    assert masker.feed(b"ef and ab") == b"*** and "
    assert masker.feed(b"x\n") == b"abx\n"
    assert masker.feed(b"tail abc") == b"tail "
    assert masker.flush() == b"abc"
    assert Masker([]).feed(b"anything") == b"anything"


# Log cap ------------------------------------------------------------------------------------------
def test_a_huge_log_is_capped_keeping_its_start_and_its_end(backends: Backends) -> None:
    backend = backends(log_max_bytes=1 * MiB)
    spec = python(
        "import sys\n"
        "line = 'x' * 99 + '\\n'\n"
        "for i in range(200_000): sys.stdout.write(line)\n"  # 20 MB
        "print('THE END')\n"
    )
    task_id = backend.submit(spec)
    finished(backend, task_id)

    assert backend.status(task_id).state is TaskState.SUCCEEDED
    size = (backend.run_dir / task_id / "log").stat().st_size
    assert size <= 1 * MiB + 200  # the cap plus one note line
    log = log_of(backend, task_id)
    assert log.startswith(b"x" * 99 + b"\n")
    assert b"bytes of log dropped" in log
    assert log.endswith(b"THE END\n")
    dropped = int(log.split(b"[strato] ... ", 1)[1].split(b" ", 1)[0])
    assert dropped + size > 20_000_000 - 1000  # what was kept plus what was dropped is all of it


def test_the_capped_log_writes_everything_when_it_fits(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = CappedLog(str(path), 100)  # 75 bytes of head, 25 of tail
    log.write(b"a" * 70)
    log.write(b"b" * 20)
    log.close()
    assert path.read_bytes() == b"a" * 70 + b"b" * 20

    path2 = tmp_path / "log2"
    log = CappedLog(str(path2), 100)
    log.write(b"h" * 80)
    log.write(b"middle\n" * 10 + b"last\n")
    log.close()
    text = path2.read_bytes()
    assert text.startswith(b"h" * 75 + b"\n[strato] ... ")
    assert text.endswith(b"\nlast\n")


# Stopping -----------------------------------------------------------------------------------------
def test_sigterm_reaches_the_command_which_can_exit_cleanly(backend: LocalBackend) -> None:
    spec = python(
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('got TERM, saving', flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    task_id = backend.submit(spec)
    wait_for_log(backend, task_id, b"ready")

    backend.stop(task_id, grace=60)
    finished(backend, task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.SUCCEEDED
    assert status.exit_code == 0
    assert status.stopped
    assert b"got TERM, saving" in log_of(backend, task_id)
    assert backend.logs(task_id, 0, 1 << 30).complete


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(backend: LocalBackend) -> None:
    spec = python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    task_id = backend.submit(spec)
    wait_for_log(backend, task_id, b"ready")

    backend.stop(task_id, grace=0.5)
    finished(backend, task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.FAILED
    assert status.exit_code == 137
    assert status.stopped
    assert "SIGKILL" in status.message


def test_a_stop_reaches_child_processes_of_the_command(backend: LocalBackend, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spec = python(
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "child.wait()\n"
    )
    task_id = backend.submit(spec)
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the grandchild to start")
    grandchild = int(pid_file.read_text())

    backend.stop(task_id, grace=30)
    finished(backend, task_id)

    def gone() -> bool:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, what="the grandchild to be gone")
    assert backend.status(task_id).stopped


# Resource measurements ----------------------------------------------------------------------------
def test_peak_memory_and_cpu_time_are_recorded(backend: LocalBackend) -> None:
    task_id = backend.submit(python("block = b'x' * (100 * 1024 * 1024)\nprint(len(block))"))
    finished(backend, task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.SUCCEEDED
    assert status.peak_memory is not None and status.peak_memory >= 80 * 1000**2
    assert status.cpu_seconds is not None and status.cpu_seconds > 0


def test_usage_is_sampled_from_the_task_processes(backend: LocalBackend, tmp_path: Path) -> None:
    release = tmp_path / "release"
    task_id = backend.submit(python(WAIT_FOR_FILE, str(release)))
    wait_for_log(backend, task_id, b"ready")

    sample = backend.usage(task_id)
    assert isinstance(sample, UsageSample)
    assert sample.memory > 1 * MiB  # a Python interpreter is resident
    assert sample.peak_memory >= sample.memory
    assert sample.cpu_percent >= 0

    release.touch()
    finished(backend, task_id)
    assert backend.usage(task_id) is None


# Restarts -----------------------------------------------------------------------------------------
def test_a_new_backend_re_adopts_running_tasks(backends: Backends, tmp_path: Path) -> None:
    first = backends()
    release = tmp_path / "release"
    long_task = first.submit(python(WAIT_FOR_FILE, str(release), resources=TaskResources(cpus=1)))
    short_task = first.submit(python(WAIT_FOR_FILE, str(release), resources=TaskResources(cpus=1)))
    wait_for_log(first, long_task, b"ready")
    first.close()
    del first  # the control plane is gone; its tasks are not

    second = backends()
    notified: list[str] = []
    second.add_listener(notified.append)
    assert sorted(second.list_tasks()) == sorted([long_task, short_task])
    assert second.status(long_task).state is TaskState.RUNNING
    assert second.free().cpus == 0  # both adopted tasks hold their cpu again
    assert isinstance(second.usage(long_task), UsageSample)

    second.stop(long_task, grace=30)
    finished(second, long_task)
    status = second.status(long_task)
    assert status.stopped and status.exit_code == 143
    wait_until(lambda: long_task in notified, what="the listener to hear of the adopted task's end")
    assert second.free().cpus == 1

    release.touch()  # the other one ends on its own, unwatched by a wait()
    finished(second, short_task)
    assert second.status(short_task).state is TaskState.SUCCEEDED
    assert b"released" in log_of(second, short_task)
    wait_until(lambda: short_task in notified, what="the listener to hear of the second end")
    assert second.free().cpus == 2


def test_a_pending_kill_survives_a_restart(backends: Backends) -> None:
    first = backends()
    spec = python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    task_id = first.submit(spec)
    wait_for_log(first, task_id, b"ready")
    first.stop(task_id, grace=1)
    first.close()  # its SIGKILL timer goes with it; the next backend re-arms it from stop.json

    second = backends()
    finished(second, task_id)
    status = second.status(task_id)
    assert status.stopped and status.exit_code == 137


def test_a_task_whose_processes_vanished_is_lost(backend: LocalBackend, tmp_path: Path) -> None:
    task_id = backend.submit(python(WAIT_FOR_FILE, str(tmp_path / "never")))
    wait_for_log(backend, task_id, b"ready")
    shim_pid = json.loads((backend.run_dir / task_id / "pid.json").read_text())["pid"]

    os.killpg(shim_pid, signal.SIGKILL)  # as if the machine went down under it: no exit recorded
    finished(backend, task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.LOST
    assert status.exit_code is None
    assert "vanished without recording an exit" in status.message
    assert backend.logs(task_id).complete
    wait_until(lambda: backend.free().cpus == 2, what="the lost task's resources to be freed")


# Odd inputs ----------------------------------------------------------------------------------------
def test_unicode_and_spaces_in_paths_and_arguments(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "runs with spaces é 漢字", cpus=1, memory=1024**3)
    try:
        task_id = backend.submit(
            python("import os, sys\nprint(sys.argv[1])\nprint(os.getcwd())", "héllo wörld 漢字 'quoted'")
        )
        finished(backend, task_id)
        assert backend.status(task_id).state is TaskState.SUCCEEDED
        lines = log_of(backend, task_id).decode().splitlines()
        assert lines[0] == "héllo wörld 漢字 'quoted'"
        assert lines[1] == str(backend.run_dir / task_id / "work")
    finally:
        backend.close()


def test_a_command_that_does_not_exist_fails_with_127_and_says_why(backend: LocalBackend) -> None:
    task_id = backend.submit(TaskSpec(["strato-no-such-program", "--flag"]))
    finished(backend, task_id)

    status = backend.status(task_id)
    assert status.state is TaskState.FAILED
    assert status.exit_code == 127
    assert b"cannot start 'strato-no-such-program'" in log_of(backend, task_id)


def test_release_deletes_the_task_directory(backend: LocalBackend) -> None:
    task_id = backend.submit(python("print('bye')"))
    finished(backend, task_id)
    backend.release(task_id)
    assert not (backend.run_dir / task_id).exists()


def test_an_interruption_delivers_a_readable_notice_then_sigterm(backend: LocalBackend) -> None:
    spec = python(
        "import json, os, signal, sys, time\n"
        "def notice(*_):\n"
        "    path = os.path.join(os.environ['STRATO_CONTROL_DIR'], 'notice.json')\n"
        "    print('notice', json.load(open(path))['notice_seconds'], flush=True)\n"
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, notice)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    task_id = backend.submit(spec)
    wait_for_log(backend, task_id, b"ready")
    backend.interrupt(task_id, notice=45)
    finished(backend, task_id)
    status = backend.status(task_id)
    assert status.stopped and status.exit_code == 143
    assert b"notice 45" in log_of(backend, task_id)


# Gangs --------------------------------------------------------------------------------------------
def test_a_gang_member_that_cannot_start_takes_the_started_ones_down(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "release"
    started: list[int] = []
    real_start = backend._start

    def start_then_break(task_id: str, spec: TaskSpec):  # type: ignore[no-untyped-def]
        if started:
            raise OSError("no more processes")
        proc, pid_info = real_start(task_id, spec)
        started.append(proc.pid)
        return proc, pid_info

    monkeypatch.setattr(backend, "_start", start_then_break)
    one_cpu = TaskResources(cpus=1)
    with pytest.raises(OSError, match="no more processes"):
        backend.submit_gang([python(WAIT_FOR_FILE, str(release), resources=one_cpu)] * 2)
    assert backend.list_tasks() == [] and backend.free().cpus == 2  # nothing left running or held
    with pytest.raises(ProcessLookupError):
        os.killpg(started[0], 0)  # the first worker's process group is gone


def test_a_new_backend_re_adopts_every_task_of_a_gang(backends: Backends, tmp_path: Path) -> None:
    first = backends()
    release = tmp_path / "release"
    gang = first.submit_gang([python(WAIT_FOR_FILE, str(release), resources=TaskResources(cpus=1))] * 2)
    for task_id in gang:
        wait_for_log(first, task_id, b"ready")
    first.close()

    second = backends()
    assert sorted(second.list_tasks()) == sorted(gang) and second.free().cpus == 0
    release.touch()
    for task_id in gang:
        finished(second, task_id)
        assert second.status(task_id).state is TaskState.SUCCEEDED
    wait_until(lambda: second.free().cpus == 2, what="the gang's cpus to be freed")
