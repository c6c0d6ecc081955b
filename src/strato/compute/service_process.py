"""A long-running helper process of the platform itself (the MLflow tracking server), as opposed to a
user's task: started in its own process group with its log in a file, found again after a control
plane crash through a state file (pid and port), health-checked over HTTP, and stopped with the group.

Only this module starts or kills such processes; the owner (``tracking/server.py``) decides when.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServiceInfo:
    pid: int
    port: int
    started_at: float
    create_time: float  # the process's own start time: a reused pid is not mistaken for it


class ServiceProcess:
    """One named helper process, described by the command that starts it on a given port."""

    def __init__(self, name: str, state_dir: Path, *, health_path: str = "/health"):
        self.name = name
        self.state_dir = state_dir
        self.health_path = health_path
        self.info: ServiceInfo | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.info.port}" if self.info else None

    # Start, adopt, stop --------------------------------------------------------------------------
    def adopt(self) -> bool:
        """Take over the process a previous control plane left running, if it is still the same one."""
        try:
            data = json.loads(self.state_file.read_text())
            info = ServiceInfo(**data)
        except (OSError, ValueError, TypeError):
            return False
        if not _same_process(info):
            return False
        self.info = info
        return True

    def start(self, command: list[str], env: dict[str, str], port: int) -> ServiceInfo:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n[strato] starting {self.name} on port {port}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped as one, spared the control plane's signals
                cwd=self.state_dir,
            )
        create_time = psutil.Process(self._popen.pid).create_time()
        self.info = ServiceInfo(self._popen.pid, port, time.time(), create_time)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info.__dict__))
        tmp.replace(self.state_file)
        return self.info

    def alive(self) -> bool:
        if self.info is None:
            return False
        if self._popen is not None and self._popen.pid == self.info.pid:
            return self._popen.poll() is None
        return _same_process(self.info)

    def healthy(self, timeout: float = 2.0) -> bool:
        url = self.url()
        if url is None or not self.alive():
            return False
        try:
            return httpx.get(url + self.health_path, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the group at once: for tests of a dying service and for a start that hangs."""
        self._signal(signal.SIGKILL)

    def stop(self, grace: float = 10.0) -> None:
        if self.info is None:
            return
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            self._signal(signal.SIGKILL)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        self.info = None
        self._popen = None

    def _signal(self, sig: signal.Signals) -> None:
        if self.info is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.info.pid, sig)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=0.1)  # reap, so alive() sees the death


def _same_process(info: ServiceInfo) -> bool:
    try:
        process = psutil.Process(info.pid)
        return abs(process.create_time() - info.create_time) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
