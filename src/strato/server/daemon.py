"""Running the control plane: in the foreground (``strato server``) or as a daemon (``strato up``)
with its pid, URL and log in the home (``server.json``, ``server.log``). One control plane per home,
enforced by an exclusive lock on ``server.lock``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import psutil

from strato.config import Settings
from strato.errors import StratoError, Unavailable

log = logging.getLogger("strato.server")


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    url: str
    host: str
    port: int
    home: str
    started_at: float


def info_path(settings: Settings) -> Path:
    return settings.home / "server.json"


def log_path(settings: Settings) -> Path:
    return settings.home / "server.log"


def read_info(settings: Settings) -> ServerInfo | None:
    """The running control plane of this home, or None (stale files from a killed one are ignored)."""
    try:
        info = ServerInfo(**json.loads(info_path(settings).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    if not psutil.pid_exists(info.pid) or not _holds_lock(settings):
        return None
    return info


def _holds_lock(settings: Settings) -> bool:
    """True when some process holds this home's server lock."""
    path = settings.home / "server.lock"
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _lock(settings: Settings) -> IO[str]:
    settings.home.mkdir(parents=True, exist_ok=True)
    handle = (settings.home / "server.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = read_info(settings)
        where = f" (pid {running.pid}, {running.url})" if running else ""
        raise StratoError(
            f"a Strato control plane already runs for home {settings.home}{where}; "
            "stop it with `strato down` or use another --home"
        ) from None
    return handle


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose listener says
    # so, and without it every response body waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StratoError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    """Run the control plane in this process until SIGTERM/SIGINT."""
    import uvicorn

    from strato.server.app import create_app

    lock = _lock(settings)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    url_host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = settings.url or f"http://{url_host}:{port}"
    app = create_app(settings.model_copy(update={"port": port}))  # port 0: the one the OS gave
    info = ServerInfo(
        pid=os.getpid(), url=url, host=settings.host, port=port, home=str(settings.home), started_at=time.time()
    )
    tmp = info_path(settings).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info)))
    os.replace(tmp, info_path(settings))
    try:
        config = uvicorn.Config(app, log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        with contextlib.suppress(FileNotFoundError):
            if json.loads(info_path(settings).read_text()).get("pid") == os.getpid():
                info_path(settings).unlink()
        lock.close()


def child_environment(settings: Settings) -> dict[str, str]:
    """The settings a daemon inherits, as ``STRATO_*`` variables (flags do not survive a fork/exec)."""
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_defaults=True, exclude={"home"}).items():
        env[f"STRATO_{name.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    env["STRATO_HOME"] = str(settings.home)
    return env


def start(settings: Settings, timeout: float = 60.0) -> ServerInfo:
    """Start the daemon (or return the one running) and wait until it answers /healthz."""
    running = read_info(settings)
    if running is not None:
        return running
    settings.home.mkdir(parents=True, exist_ok=True)
    with log_path(settings).open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "strato.server"],
            env=child_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.home,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StratoError(
                f"the control plane exited at start: {_last_error(settings)} (full log: {log_path(settings)})"
            )
        info = read_info(settings)
        if info is not None and info.pid == process.pid and healthy(info.url):
            return info
        time.sleep(0.05)
    raise Unavailable(f"the control plane did not answer within {timeout:g}s; see {log_path(settings)}")


def _last_error(settings: Settings) -> str:
    try:
        lines = [line for line in log_path(settings).read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "no log was written"
    errors = [line for line in lines if line.startswith("strato: ")]
    return (errors or lines or ["no log was written"])[-1].removeprefix("strato: ")


def healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def stop(settings: Settings, timeout: float = 30.0) -> ServerInfo | None:
    """Stop the daemon gracefully (SIGTERM, then SIGKILL after ``timeout``). Running jobs keep running."""
    info = read_info(settings)
    if info is None:
        return None
    try:
        process = psutil.Process(info.pid)
        process.terminate()
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(10)
    except psutil.NoSuchProcess:
        pass
    return info
