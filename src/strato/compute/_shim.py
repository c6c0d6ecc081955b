"""Supervisor of one local task: ``python -I -S _shim.py <task_dir>``.

Standard library only (it runs with ``-S`` and never imports strato) so it starts in milliseconds.
The local backend starts it as the leader of a new session; the user's command runs as its child in
the same process group, so ``killpg`` from the backend reaches the whole tree. The shim:

- relays the command's stdout+stderr to ``<task_dir>/log``, masking the values of the secret
  environment variables named in ``task.json`` (the values only ever live in the environment);
- caps the log: past the cap only the last part of the output is kept and, when the command ends, a
  ``[strato] ... N bytes of log dropped ...`` line and that last part are appended;
- ignores SIGTERM/SIGINT itself so that on a stop it outlives the command and records how it ended;
- writes ``<task_dir>/exit.json`` atomically with the exit code (128+N when killed by signal N), the
  peak resident memory and the CPU time of the command's processes.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time

_READ_SIZE = 64 * 1024
_TAIL_LIMIT = 1024 * 1024
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_EXIT_POLL_MS = 500  # how soon we notice an exit while an orphaned grandchild still holds the pipe


class Masker:
    """Replaces secret values with ``***`` in a byte stream that arrives in arbitrary chunks.

    It holds back only the shortest tail that could still turn into a secret, so ordinary output
    streams at once and a secret split across two reads is still masked.
    """

    def __init__(self, secrets: list[bytes]):
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._pending + data
        if not self._secrets:
            return buf
        cut = self._safe_cut(buf)
        self._pending = buf[cut:]
        return self._mask(buf[:cut])

    def flush(self) -> bytes:
        out, self._pending = self._mask(self._pending), b""
        return out

    def _mask(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, b"***")
        return data

    def _safe_cut(self, buf: bytes) -> int:
        cut = len(buf)
        for secret in self._secrets:  # a tail that is the beginning of a secret must wait for more
            for k in range(min(len(secret) - 1, len(buf)), 0, -1):
                if buf.endswith(secret[:k]):
                    cut = min(cut, len(buf) - k)
                    break
        moved = True
        while moved:  # and a whole secret must not be split by the cut
            moved = False
            for secret in self._secrets:
                i = buf.find(secret, max(0, cut - len(secret) + 1))
                if i != -1 and i < cut < i + len(secret):
                    cut, moved = i, True
        return cut


class CappedLog:
    """Appends to the log file until ``max_bytes - tail`` bytes, then keeps only the last ``tail``
    bytes (1 MiB or a quarter of the cap) in memory and writes them, after a note of what was dropped,
    on ``close``. The file so stays within ``max_bytes`` plus one note line."""

    def __init__(self, path: str, max_bytes: int):
        # Unbuffered so readers stream the log while it grows; closed by close().
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115
        self._max_bytes = max_bytes
        self._tail_max = max(0, min(_TAIL_LIMIT, max_bytes // 4))
        self._head_room = max(0, max_bytes - self._tail_max) - self._file.tell()
        self._tail = bytearray()
        self._dropped = 0
        self._ends_with_newline = True

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._head_room > 0:
            head = data[: self._head_room]
            self._file.write(head)
            self._head_room -= len(head)
            self._ends_with_newline = head.endswith(b"\n")
            data = data[len(head) :]
        if data:
            self._tail += data
            excess = len(self._tail) - self._tail_max
            if excess > 0:
                del self._tail[:excess]
                self._dropped += excess

    def close(self) -> None:
        tail = bytes(self._tail)
        if self._dropped:
            newline = tail.find(b"\n")
            if 0 <= newline < len(tail) - 1:  # start the kept part on a whole line
                self._dropped += newline + 1
                tail = tail[newline + 1 :]
            note = (
                f"[strato] ... {self._dropped} bytes of log dropped (the log keeps at most "
                f"{self._max_bytes} bytes; what follows is the end of the output) ...\n"
            ).encode()
            tail = (b"" if self._ends_with_newline else b"\n") + note + tail
        self._file.write(tail)
        self._file.close()


def _ignore(signum: int, frame: object) -> None:
    """A handler, not SIG_IGN: exec resets handlers to the default but keeps ignored signals ignored,
    so the command still dies of SIGTERM while the shim lives on to record it."""


def _exec_command(command: list[str], cwd: str, read_fd: int, write_fd: int) -> None:
    """In the forked child: wire the pipe to stdout and stderr and become the user's command."""
    try:
        os.close(read_fd)
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        # Python ignores SIGPIPE and SIGXFSZ at startup and ignored signals survive exec; so does the
        # signal mask. A stop signal that arrived since the fork is pending and now takes effect.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.chdir(cwd)
        os.execvp(command[0], command)
    except BaseException as exc:  # the command could not start: say why in its log, exit as a shell would
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        try:
            os.write(2, f"[strato] cannot start {command[0]!r}: {exc}\n".encode(errors="replace"))
        finally:
            os._exit(code)


def _relay(pid: int, read_fd: int, masker: Masker, log: CappedLog) -> tuple[int, resource.struct_rusage]:
    """Copy the pipe into the log until the command ends; return its wait status and rusage."""
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP)
    ended: tuple[int, resource.struct_rusage] | None = None
    while ended is None:
        if poller.poll(_EXIT_POLL_MS):
            data = os.read(read_fd, _READ_SIZE)
            if not data:  # every writer is gone: the command ended (or is about to)
                break
            log.write(masker.feed(data))
        waited, wait_status, usage = os.wait4(pid, os.WNOHANG)
        if waited:
            ended = (wait_status, usage)
    if ended is None:
        _, wait_status, usage = os.wait4(pid, 0)
        ended = (wait_status, usage)
    else:  # the command ended but a process it left behind may hold the pipe: take what is there
        os.set_blocking(read_fd, False)
        while True:
            try:
                data = os.read(read_fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                break
            log.write(masker.feed(data))
    os.close(read_fd)
    return ended


def _write_json_atomically(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def main(task_dir: str) -> None:
    with open(os.path.join(task_dir, "task.json"), encoding="utf-8") as f:
        task = json.load(f)
    # The backend starts us with SIGTERM and SIGINT blocked, so a stop that comes while we start up
    # waits instead of killing us; they stay blocked until the command is forked (see below).
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    secrets = [os.environb.get(name.encode(), b"") for name in task.get("secret_env_names", [])]
    masker = Masker(secrets)
    log = CappedLog(os.path.join(task_dir, "log"), int(task["log_max_bytes"]))

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        _exec_command(task["command"], os.path.join(task_dir, "work"), read_fd, write_fd)
    os.close(write_fd)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if os.path.exists(os.path.join(task_dir, "stop.json")):
        # A stop was asked before the command existed, so the group signal missed it: pass it on.
        # (The backend writes stop.json before it signals; a signal that also reached the command
        # meanwhile is still blocked there, and a second one of the same kind merges with it.)
        os.kill(pid, signal.SIGTERM)
    wait_status, usage = _relay(pid, read_fd, masker, log)
    log.write(masker.flush())
    log.close()

    exit_code = os.waitstatus_to_exitcode(wait_status)
    if exit_code < 0:
        exit_code = 128 - exit_code
    max_rss = usage.ru_maxrss
    _write_json_atomically(
        os.path.join(task_dir, "exit.json"),
        {
            "exit_code": exit_code,
            "peak_memory": max_rss if sys.platform == "darwin" else max_rss * 1024,  # Linux: KiB
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "ended_at": time.time(),
        },
    )


if __name__ == "__main__":
    main(sys.argv[1])
