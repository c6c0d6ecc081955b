"""A warm pool process (``python -m strato.jobs.warm_server``): imports a script's packages once, then
forks one child per job that asks, so a job's Python code starts with its imports already done (what
SageMaker's warm pools and Ray Tune's actor reuse save: here ~1 s of scikit-learn import per trial).

Protocol, over a Unix socket (one connection per job, from the job's runner): the runner sends its
stdin/stdout/stderr descriptors and a JSON request (argv, cwd, env); the pool forks; the child becomes
the user's process (own process group, the runner's descriptors, the job's environment and working
directory) and runs the script as ``python script.py`` would; the pool answers ``{"pid": N}`` and, when
the child ends, ``{"exit": code}`` (negative: killed by that signal). If the runner dies first, the child
kills its process group, so a killed task never leaves user code running.

The pool holds a lock file for its life (one pool per key) and exits after ``--keep-alive`` seconds with
no job (SageMaker's KeepAlivePeriodInSeconds).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

HEADER = struct.Struct("!I")  # length of the JSON request that follows the descriptors
FDS = 3  # stdin, stdout, stderr


def recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("runner closed the connection")
        data += chunk
    return data


def send_json(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the runner may be gone; the child then dies on its own
        conn.sendall(json.dumps(message).encode() + b"\n")


def preload(modules: list[str]) -> list[str]:
    """Import what the script imports at its top; what fails is left for the script to report."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:
            failed.append(name)
    return failed


def warm_up(target: str, argument: str) -> None:
    """Run a caller's warm-up (such as loading a model once, so every module it needs is imported);
    a failure leaves the children to meet it themselves."""
    module, _, function = target.partition(":")
    try:
        getattr(importlib.import_module(module), function)(argument)
    except BaseException:
        traceback.print_exc()


class Pool:
    def __init__(self, path: Path, keep_alive: float) -> None:
        self.path = path
        self.keep_alive = keep_alive
        self.children: dict[int, socket.socket] = {}  # pid -> the runner's connection
        self.pid = os.getpid()

    def serve(self, listener: socket.socket) -> tuple[socket.socket, list[int], dict[str, Any]] | None:
        """Accept jobs until idle for keep_alive. Returns only in a forked child, with its request."""
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        idle_since = time.monotonic()
        while True:
            for _ in selector.select(timeout=0.02):
                conn, _ = listener.accept()
                request = self._receive(conn)
                if request is None:
                    continue
                fds, body = request
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for other in self.children.values():
                        other.close()
                    return conn, fds, body
                for fd in fds:
                    os.close(fd)
                self.children[pid] = conn
                send_json(conn, {"pid": pid})
            self._reap()
            if self.children:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.keep_alive:
                return None

    def _receive(self, conn: socket.socket) -> tuple[list[int], dict[str, Any]] | None:
        conn.settimeout(10)
        try:
            header, fds, _, _ = socket.recv_fds(conn, HEADER.size, FDS)
            if len(header) != HEADER.size or len(fds) != FDS:
                raise ConnectionError("incomplete request")
            (size,) = HEADER.unpack(header)
            body = json.loads(recv_exact(conn, size))
        except (OSError, ValueError, ConnectionError):
            conn.close()
            return None
        conn.settimeout(None)
        return fds, body

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                send_json(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()


def watch_runner(conn: socket.socket) -> None:
    """In the child: the runner never writes after its request, so end-of-file means it died."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(64):
                pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="strato-runner-watch", daemon=True).start()


def become_job(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the child: turn into the user's process, as ``python <argv[1:]>`` started in ``cwd``."""
    os.setsid()  # a process group of its own: a stop's SIGTERM and a kill reach the code's subprocesses
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy.random" in sys.modules:  # forked children would otherwise share the pool's global seed
        sys.modules["numpy.random"].seed()
    watch_runner(conn)


def run_script(argv: list[str]) -> int:
    """Run ``argv`` (``script.py args`` or ``-c code args``) as ``__main__``; the exit code it ends with."""
    if argv[0] == "-c":
        code, filename, sys.argv = argv[1], "<string>", ["-c", *argv[2:]]
        sys.path[0] = ""
    else:
        filename, sys.argv = argv[0], list(argv)
        try:
            code = Path(filename).read_text()
        except OSError as exc:  # as python reports a script it cannot open
            print(f"python: can't open file {str(Path(filename).resolve())!r}: {exc}", file=sys.stderr)
            return 2
        sys.path[0] = str(Path(filename).resolve().parent)
    main = type(sys)("__main__")
    main.__file__ = filename
    sys.modules["__main__"] = main
    try:
        exec(compile(code, filename, "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--keep-alive", type=float, default=120.0)
    parser.add_argument("--preload", default="", help="comma-separated modules to import first")
    parser.add_argument("--warmup", default="", help="module:function called with --warmup-arg after the imports")
    parser.add_argument("--warmup-arg", default="")
    args = parser.parse_args()
    lock = open(args.socket.with_suffix(".lock"), "a")  # noqa: SIM115 - held for the pool's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another pool for this key is starting or running
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")  # who holds it, for whoever must stop pools early (tests)
    lock.flush()
    preload([m for m in args.preload.split(",") if m])
    if args.warmup:
        warm_up(args.warmup, args.warmup_arg)
    pool = Pool(args.socket, args.keep_alive)
    args.socket.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(args.socket))
    listener.listen(64)
    try:
        job = pool.serve(listener)
    finally:
        if os.getpid() == pool.pid:
            args.socket.unlink(missing_ok=True)  # before the lock goes, so a new pool may bind
    if job is None:
        return 0
    conn, fds, request = job
    lock.close()  # the child's copy only: the pool keeps its lock
    become_job(conn, fds, request)
    return run_script(request["argv"][1:])


if __name__ == "__main__":
    sys.exit(main())
