"""The runner's side of warm pools (``warm_pool:`` on a training job): find the pool process for this
script's imports and environment, and run the user's code as its forked child; when there is none yet,
start one in the background and run this job cold, so the next job on the machine starts warm.

A pool is keyed by the interpreter, the modules it preloads (the script's top-level imports, minus the
code's own modules and Strato's, which hold per-job state) and the environment without per-job
variables (``OMP_NUM_THREADS`` and the like take effect at import, so they must match).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from strato.jobs.warm_server import FDS, HEADER

PER_JOB_PREFIXES = ("STRATO_", "SM_", "AIP_", "MLFLOW_", "CLOUD_ML_")
PER_JOB_NAMES = {
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
    "TF_CONFIG", "CLUSTER_SPEC", "PWD", "OLDPWD", "TRAINING_JOB_NAME",
}  # fmt: skip
PYTHON_NAMES = {"python", "python3", f"python3.{sys.version_info.minor}"}


def pool_dir() -> Path:
    path = Path(os.environ.get("STRATO_WARM_DIR") or Path(tempfile.gettempdir()) / f"strato-warm-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def script_argv(argv: list[str]) -> list[str] | None:
    """``argv`` without the interpreter when it runs a Python script or ``-c`` code with this
    interpreter (only then can a pool run it); else None."""
    if len(argv) < 2 or not (argv[0] == sys.executable or argv[0] in PYTHON_NAMES):
        return None
    if argv[1] == "-c" and len(argv) >= 3:
        return argv[1:]
    return argv[1:] if argv[1].endswith(".py") else None


def top_level_imports(source: str, local: set[str]) -> list[str]:
    """Modules a script imports at module level (not the code's own modules, not Strato's)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    keep = []
    for name in names:
        root = name.split(".")[0]
        if root not in local and root not in {"strato", "__future__", "__main__"} and name not in keep:
            keep.append(name)
    return keep


def preload_for(args: list[str], cwd: Path) -> list[str]:
    if args[0] == "-c":
        return top_level_imports(args[1], set())
    script = cwd / args[0]
    try:
        source = script.read_text()
    except OSError:
        return []
    local = {p.stem for p in script.parent.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    return top_level_imports(source, local)


def pool_key(preload: list[str], env: dict[str, str], warmup: tuple[str, str] | None = None) -> str:
    static = {k: v for k, v in env.items() if not k.startswith(PER_JOB_PREFIXES) and k not in PER_JOB_NAMES}
    blob = json.dumps([sys.executable, preload, sorted(static.items()), warmup])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def start_pool(
    path: Path, preload: list[str], env: dict[str, str], keep_alive: float, warmup: tuple[str, str] | None = None
) -> None:
    static = {k: v for k, v in env.items() if not k.startswith(PER_JOB_PREFIXES) and k not in PER_JOB_NAMES}
    command = [sys.executable, "-m", "strato.jobs.warm_server", "--socket", str(path)]
    command += ["--keep-alive", str(keep_alive), "--preload", ",".join(preload)]
    if warmup is not None:
        command += ["--warmup", warmup[0], "--warmup-arg", warmup[1]]
    with open(path.with_suffix(".log"), "ab") as log:
        subprocess.Popen(
            command, env=static, cwd=path.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,  # outlives this task; ends itself when idle
        )  # fmt: skip


class WarmRun:
    """One job's user code run by a pool. ``start`` returns False when no pool answers (one is then
    started for the next job); ``wait`` returns the exit code as ``Popen.wait`` would."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        keep_alive: float,
        *,
        preload: list[str] | None = None,
        warmup: tuple[str, str] | None = None,
    ) -> None:
        """``preload`` replaces the script's own top-level imports; ``warmup`` (``module:function``, arg)
        runs once in the pool after them."""
        self.args = script_argv(argv) or []
        self.preload, self.warmup = preload, warmup
        self.cwd, self.env, self.keep_alive = cwd, env, keep_alive
        self.conn: socket.socket | None = None
        self.pid: int | None = None
        self._lines = b""

    def start(self) -> bool:
        preload = self.preload if self.preload is not None else preload_for(self.args, self.cwd)
        path = pool_dir() / f"{pool_key(preload, self.env, self.warmup)}.sock"
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            body = json.dumps({"argv": ["python", *self.args], "cwd": str(self.cwd), "env": self.env}).encode()
            socket.send_fds(conn, [HEADER.pack(len(body))], list(range(FDS)))
            conn.sendall(body)
            self.conn = conn
            self.pid = int(self._message()["pid"])
        except (OSError, ValueError, KeyError, ConnectionError):
            conn.close()
            self.conn = None
            start_pool(path, preload, self.env, self.keep_alive, self.warmup)
            return False
        return True

    def _message(self) -> dict[str, int]:
        assert self.conn is not None
        while b"\n" not in self._lines:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise ConnectionError("the warm pool went away")
            self._lines += chunk
        line, self._lines = self._lines.split(b"\n", 1)
        return dict(json.loads(line))

    def signal(self, signum: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def wait(self) -> int:
        try:
            return int(self._message()["exit"])
        except (OSError, ValueError, KeyError, ConnectionError):
            return -signal.SIGKILL  # the pool died with our child: it was killed
        finally:
            if self.conn is not None:
                self.conn.close()
