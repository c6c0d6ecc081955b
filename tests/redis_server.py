"""A private ``redis-server`` on loopback for tests that must stop Redis (the shared one on 6379 must stay up).

It runs in a temporary directory with persistence off, on a free port that a restart keeps, so a test can
kill it and bring it back at the same address::

    with redis_server() as server:
        store = open_online_store(server.url)
        server.kill()       # SIGKILL, as a crash would
        server.start()      # same port, empty
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

READY_LINE = "Ready to accept connections"
START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, port: int | None = None, *, password: str | None = None, binary: str = "redis-server"):
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError(f"{binary} is not installed (apt-get install redis-server)")
        self.binary = path
        self.port = port or free_port()
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="strato-redis-"))
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it accepts connections (its log says so)."""
        if self.process is not None and self.process.poll() is None:
            return
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.dir), "--logfile", ""]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        process = self.process
        # A server that neither gets ready nor exits is killed, which ends the read loop below.
        watchdog = threading.Timer(START_TIMEOUT_S, process.kill)
        watchdog.start()
        log: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.append(line)
                if READY_LINE in line:
                    break
            else:
                process.wait()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{''.join(log[-20:])}")
        finally:
            watchdog.cancel()
        # Keep draining its log so the server never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would, and wait for it to be gone."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(port: int | None = None, *, password: str | None = None) -> Iterator[RedisServer]:
    """A started private ``redis-server`` (``--requirepass`` when given a password); stopped and its
    directory removed at the end."""
    server = RedisServer(port, password=password)
    try:
        server.start()
        yield server
    finally:
        server.stop()
