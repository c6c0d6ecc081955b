"""The local backend: each task is a process group on this machine, supervised by ``_shim.py``.

One directory per task under ``run_dir``::

    <task_id>/task.json   what to run: command, labels, resources, log cap, NAMES of secret variables
             pid.json    the shim's pid and process create time (so a reused pid is not mistaken for it)
             work/       the command's working directory
             log         stdout+stderr, secrets masked, capped (written by the shim)
             exit.json   written by the shim when the command ends: exit code, peak memory, CPU time
             stop.json   written by ``stop``: when it was asked and when SIGKILL is due
             usage.json  the highest memory the sampler saw, so a restarted backend still knows it
             shim.err    the shim's own stderr (empty unless the shim itself broke)

``status`` is derived from these files plus "is the shim alive", never from memory, so a new backend
object over the same ``run_dir`` (after the control plane was killed) reports, streams, stops and
accounts for the same tasks; it watches re-adopted tasks by polling since they are not its children.

The task's environment is exactly ``spec.env`` plus ``spec.secret_env``: nothing of the control
plane's own environment leaks in, so callers pass PATH, HOME and the like when the command needs them.
Secret values are handed to the shim through that environment and are never written to disk.
``release`` of a running task raises ``Conflict``: stop it and wait for it to end first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

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

logger = logging.getLogger(__name__)

_SHIM = Path(__file__).with_name("_shim.py")
_WATCH_INTERVAL = 0.2  # seconds between liveness checks of re-adopted tasks
_CREATE_TIME_TOLERANCE = 0.5  # seconds; psutil's create time is exact to a clock tick
_KILLED_EXIT_CODE = 128 + signal.SIGKILL
TRASH = ".trash"  # released task dirs wait here for deletion
CONTROL_DIR_ENV = "STRATO_CONTROL_DIR"  # where a task finds messages from the platform (the notice)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write then rename, so a reader (or a restart) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _exit_message(exit_code: int, stopped: bool) -> str:
    if exit_code == 0:
        text = "exited with code 0"
    elif 128 < exit_code <= 128 + 64:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            name = f"signal {exit_code - 128}"
        text = f"killed by {name} (exit code {exit_code})"
    else:
        text = f"exited with code {exit_code}"
    return f"stopped; {text}" if stopped else text


class _UsageTracker:
    """Samples the processes under one shim (not the shim itself: it is our overhead, not the task's)."""

    def __init__(self, pid: int, create_time: float, peak: int):
        self._pid, self._create_time = pid, create_time
        self._lock = threading.Lock()
        self._procs: dict[int, psutil.Process] = {}  # kept so cpu_percent has a baseline between samples
        self.peak = peak
        self.saved_peak = peak
        self.latest: UsageSample | None = None

    def sample(self, now: float) -> UsageSample | None:
        with self._lock:
            try:
                shim = psutil.Process(self._pid)
                if abs(shim.create_time() - self._create_time) > _CREATE_TIME_TOLERANCE:
                    return None
                children = shim.children(recursive=True)
            except psutil.Error:
                return None
            cpu, rss, seen = 0.0, 0, {}
            for proc in children:
                cached = self._procs.get(proc.pid)
                proc = cached if cached is not None and cached == proc else proc  # == checks create time
                try:
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                seen[proc.pid] = proc
            self._procs = seen
            self.peak = max(self.peak, rss)
            self.latest = UsageSample(timestamp=now, cpu_percent=cpu, memory=rss, peak_memory=self.peak)
            return self.latest


class LocalBackend(ComputeBackend):
    name = "local"

    def __init__(
        self,
        run_dir: Path,
        *,
        cpus: float | None = None,
        memory: int | None = None,
        log_max_bytes: int = 64 * 1024**2,
        sample_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.run_dir / TRASH, ignore_errors=True)
        self._slots = Slots(
            TaskResources(
                cpus=float(cpus if cpus is not None else (os.cpu_count() or 1)),
                memory=int(memory if memory is not None else psutil.virtual_memory().total),
                gpus=0,
            )
        )
        self._log_max_bytes = log_max_bytes
        self._sample_interval = sample_interval
        self._clock = clock
        self._lock = threading.Lock()  # guards the slots (what running tasks hold) and the dicts below
        self._starting: set[str] = set()  # submitted, shim not recorded yet
        self._adopted: set[str] = set()  # running tasks we did not start: watched by polling
        self._trackers: dict[str, _UsageTracker] = {}
        self._timers: list[threading.Timer] = []
        self._closed = threading.Event()
        self._adopt_running_tasks()
        self._monitor = threading.Thread(target=self._monitor_loop, name="strato-local-monitor", daemon=True)
        self._monitor.start()

    # Capacity ---------------------------------------------------------------------------------
    def capacity(self) -> TaskResources:
        return self._slots.capacity

    def free(self) -> TaskResources:
        with self._lock:
            return self._slots.free()

    # Submit -----------------------------------------------------------------------------------
    def submit_gang(self, specs: list[TaskSpec]) -> list[str]:
        """Reserve slots for every task first (all or none, under one lock), then start them; a task that
        fails to start takes the already started ones down with it (killed, their dirs removed)."""
        self.validate_gang(specs)
        ids = [f"t-{int(self._clock() * 1000):013d}-{os.urandom(4).hex()}" for _ in specs]
        with self._lock:
            self._slots.reserve_all([(task_id, spec.resources) for task_id, spec in zip(ids, specs, strict=True)])
            self._starting.update(ids)
        started: list[tuple[str, subprocess.Popen[bytes], dict[str, Any]]] = []
        try:
            for task_id, spec in zip(ids, specs, strict=True):
                started.append((task_id, *self._start(task_id, spec)))
        except BaseException:
            for _, proc, _ in started:
                self._signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            with self._lock:
                for task_id in ids:
                    self._slots.release(task_id)
                    self._starting.discard(task_id)
            for task_id in ids:
                shutil.rmtree(self.run_dir / task_id, ignore_errors=True)
            raise
        with self._lock:
            for task_id, _, pid_info in started:
                self._starting.discard(task_id)
                if task_id in self._slots:  # not already seen ending by a concurrent status()
                    self._trackers[task_id] = _UsageTracker(pid_info["pid"], pid_info["create_time"], 0)
        for task_id, proc, _ in started:
            threading.Thread(
                target=self._reap, args=(task_id, proc), name=f"strato-reap-{task_id}", daemon=True
            ).start()
        return ids

    def _start(self, task_id: str, spec: TaskSpec) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        task_dir = self.run_dir / task_id
        (task_dir / "work").mkdir(parents=True)
        _write_json(
            task_dir / "task.json",
            {
                "command": list(spec.command),
                "labels": dict(spec.labels),
                "resources": {
                    "cpus": spec.resources.cpus,
                    "memory": spec.resources.memory,
                    "gpus": spec.resources.gpus,
                },
                "log_max_bytes": spec.log_max_bytes or self._log_max_bytes,
                "secret_env_names": sorted(spec.secret_env),
                "submitted_at": self._clock(),
            },
        )
        with open(task_dir / "shim.err", "wb") as shim_err:
            # The shim inherits this thread's signal mask: with SIGTERM/SIGINT blocked, a stop that
            # comes before it has set up its handlers waits for them instead of killing it.
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
            try:
                # -I: PYTHONPATH & co. of the task's environment must not reach the shim's own imports.
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(_SHIM), str(task_dir)],
                    env={**spec.env, **spec.secret_env, CONTROL_DIR_ENV: str(task_dir / "work" / ".strato")},
                    stdin=subprocess.DEVNULL,
                    stdout=shim_err,
                    stderr=shim_err,
                    start_new_session=True,  # the shim leads its own process group: killpg reaches the tree
                )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        # Not reaped until the reaper thread starts below, so this works even if the shim already ended.
        pid_info = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "started_at": self._clock(),
        }
        _write_json(task_dir / "pid.json", pid_info)
        return proc, pid_info

    def _reap(self, task_id: str, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self._on_end(task_id)

    def _on_end(self, task_id: str) -> None:
        """Free what a finished task held and tell the listeners, once. Safe to call repeatedly."""
        with self._lock:
            held = self._slots.release(task_id)
            self._adopted.discard(task_id)
            tracker = self._trackers.pop(task_id, None)
        if tracker is not None:
            self._save_peak(task_id, tracker)
        if held is not None:
            self._notify(task_id)

    # Status -----------------------------------------------------------------------------------
    def _task_dir(self, task_id: str) -> Path:
        task_dir = self.run_dir / task_id
        if "/" in task_id or task_id.startswith(".") or not (task_dir / "task.json").is_file():
            raise NotFound(f"task {task_id!r} not found in the local compute backend ({self.run_dir})")
        return task_dir

    @staticmethod
    def _shim_alive(pid_info: dict[str, Any] | None) -> bool:
        if not pid_info:
            return False
        try:
            proc = psutil.Process(pid_info["pid"])
            if abs(proc.create_time() - pid_info["create_time"]) > _CREATE_TIME_TOLERANCE:
                return False  # the pid was reused by another process
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def status(self, task_id: str) -> TaskStatus:
        task_dir = self._task_dir(task_id)
        pid_info = _read_json(task_dir / "pid.json")
        started_at = pid_info.get("started_at") if pid_info else None
        exit_info = _read_json(task_dir / "exit.json")
        if exit_info is None:
            with self._lock:
                starting = task_id in self._starting
            if starting or self._shim_alive(pid_info):
                return TaskStatus(task_id, TaskState.RUNNING, started_at=started_at)
            exit_info = _read_json(task_dir / "exit.json")  # it may have ended since we looked
        self._on_end(task_id)
        stop_info = _read_json(task_dir / "stop.json")
        stopped = stop_info is not None
        saved = _read_json(task_dir / "usage.json") or {}
        if exit_info is not None:
            code = int(exit_info["exit_code"])
            peaks = [p for p in (exit_info.get("peak_memory"), saved.get("peak_memory")) if p is not None]
            return TaskStatus(
                task_id,
                TaskState.SUCCEEDED if code == 0 else TaskState.FAILED,
                exit_code=code,
                started_at=started_at,
                ended_at=exit_info.get("ended_at"),
                message=_exit_message(code, stopped),
                stopped=stopped,
                peak_memory=max(peaks) if peaks else None,
                cpu_seconds=exit_info.get("cpu_seconds"),
            )
        if stop_info is not None:  # the SIGKILL took the shim with it, so nobody recorded the exit
            return TaskStatus(
                task_id,
                TaskState.FAILED,
                exit_code=_KILLED_EXIT_CODE,
                started_at=started_at,
                ended_at=stop_info.get("killed_at") or stop_info.get("kill_at"),
                message=_exit_message(_KILLED_EXIT_CODE, True) + " after the stop grace period",
                stopped=True,
                peak_memory=saved.get("peak_memory"),
            )
        shim_err = (task_dir / "shim.err").read_text(encoding="utf-8", errors="replace").strip()[-500:]
        return TaskStatus(
            task_id,
            TaskState.LOST,
            started_at=started_at,
            message="the task's process vanished without recording an exit (the machine or the control "
            "plane was restarted, or the process was killed from outside)" + (f": {shim_err}" if shim_err else ""),
            peak_memory=saved.get("peak_memory"),
        )

    # Stop -------------------------------------------------------------------------------------
    def deliver_notice(self, task_id: str, notice: dict[str, float]) -> None:
        control = self._task_dir(task_id) / "work" / ".strato"
        control.mkdir(parents=True, exist_ok=True)
        _write_json(control / "notice.json", notice)

    def stop(self, task_id: str, grace: float) -> None:
        task_dir = self._task_dir(task_id)
        pid_info = _read_json(task_dir / "pid.json")
        if (task_dir / "exit.json").exists() or not self._shim_alive(pid_info):
            return  # already ended: nothing to stop, and it did not end because of us
        assert pid_info is not None
        now = self._clock()
        stop_info = _read_json(task_dir / "stop.json")
        first = stop_info is None
        kill_at = now + max(0.0, grace)
        if stop_info is None or kill_at < stop_info.get("kill_at", kill_at + 1):
            stop_info = {**(stop_info or {"requested_at": now}), "kill_at": kill_at}
            _write_json(task_dir / "stop.json", stop_info)  # before the signal: status must know why it ended
        if first:
            self._signal_group(pid_info["pid"], signal.SIGTERM)
        self._schedule_kill(task_id, max(0.0, grace))

    def _schedule_kill(self, task_id: str, delay: float) -> None:
        timer = threading.Timer(delay, self._kill, args=(task_id,))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _kill(self, task_id: str) -> None:
        if self._closed.is_set():
            return
        task_dir = self.run_dir / task_id
        pid_info = _read_json(task_dir / "pid.json")
        if (task_dir / "exit.json").exists() or not self._shim_alive(pid_info):
            return
        assert pid_info is not None
        stop_info = _read_json(task_dir / "stop.json") or {}
        _write_json(task_dir / "stop.json", {**stop_info, "killed_at": self._clock()})
        self._signal_group(pid_info["pid"], signal.SIGKILL)

    @staticmethod
    def _signal_group(pgid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
            os.killpg(pgid, signum)

    # Logs and usage ---------------------------------------------------------------------------
    def logs(self, task_id: str, offset: int = 0, limit: int = 1024 * 1024) -> LogChunk:
        task_dir = self._task_dir(task_id)
        # Asked first: once a task has ended its log is final, so reaching its end means complete.
        finished = self.status(task_id).state.finished
        try:
            with open(task_dir / "log", "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(offset)
                data = f.read(max(0, limit))
        except FileNotFoundError:
            data, size = b"", 0
        next_offset = offset + len(data)
        return LogChunk(data=data, next_offset=next_offset, complete=finished and next_offset >= size)

    def usage(self, task_id: str) -> UsageSample | None:
        task_dir = self._task_dir(task_id)
        with self._lock:
            tracker = self._trackers.get(task_id)
        if tracker is None or (task_dir / "exit.json").exists():
            return None
        return tracker.latest or tracker.sample(self._clock())

    def _save_peak(self, task_id: str, tracker: _UsageTracker) -> None:
        if tracker.peak <= tracker.saved_peak:
            return
        task_dir = self.run_dir / task_id
        try:
            if task_dir.is_dir():
                _write_json(task_dir / "usage.json", {"peak_memory": tracker.peak})
                tracker.saved_peak = tracker.peak
        except OSError:
            logger.warning("could not save the peak memory of task %s", task_id, exc_info=True)

    # Release, list, close -----------------------------------------------------------------------
    def release(self, task_id: str) -> None:
        try:
            task_dir = self._task_dir(task_id)
        except NotFound:
            return
        if not self.status(task_id).state.finished:
            raise Conflict(f"task {task_id!r} is still running; stop it and wait for it to end before releasing it")
        self._on_end(task_id)
        # Deleting a work dir is many small syscalls; rename it away now and delete it off the caller's
        # (the reconcile loop's) thread. Leftovers from a crash are removed at the next start.
        trash = self.run_dir / TRASH / f"{task_id}-{os.getpid()}"
        trash.parent.mkdir(exist_ok=True)
        try:
            task_dir.rename(trash)
        except OSError:
            trash = task_dir
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True).start()

    def list_tasks(self) -> list[str]:
        return sorted(d.name for d in self.run_dir.iterdir() if (d / "task.json").is_file())

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()  # a pending SIGKILL is re-armed from stop.json by the next backend
        if self._monitor.is_alive() and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5)

    # Re-adoption and the monitor thread ---------------------------------------------------------
    def _adopt_running_tasks(self) -> None:
        for task_id in self.list_tasks():
            task_dir = self.run_dir / task_id
            if self.status(task_id).state is not TaskState.RUNNING:
                continue
            task = _read_json(task_dir / "task.json") or {}
            pid_info = _read_json(task_dir / "pid.json") or {}
            peak = int((_read_json(task_dir / "usage.json") or {}).get("peak_memory", 0))
            with self._lock:
                self._slots.hold(task_id, TaskResources(**task.get("resources", {})))
                self._adopted.add(task_id)
                self._trackers[task_id] = _UsageTracker(pid_info["pid"], pid_info["create_time"], peak)
            stop_info = _read_json(task_dir / "stop.json")
            if stop_info and "kill_at" in stop_info:  # a stop was in its grace period when we restarted
                self._schedule_kill(task_id, max(0.0, stop_info["kill_at"] - self._clock()))
            logger.info("re-adopted running task %s", task_id)

    def _monitor_loop(self) -> None:
        """Notice the end of re-adopted tasks (not our children, so no wait()) and sample usage."""
        next_sample = 0.0
        while not self._closed.wait(min(_WATCH_INTERVAL, self._sample_interval)):
            try:
                with self._lock:
                    adopted = list(self._adopted)
                for task_id in adopted:
                    if not self._shim_alive(_read_json(self.run_dir / task_id / "pid.json")):
                        self._on_end(task_id)
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + self._sample_interval
                    with self._lock:
                        trackers = list(self._trackers.items())
                    for task_id, tracker in trackers:
                        if tracker.sample(self._clock()) is not None:
                            self._save_peak(task_id, tracker)
            except Exception:  # one bad pass must not end the monitoring of every task
                logger.exception("local backend monitor pass failed")
