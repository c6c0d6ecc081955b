"""Checkpoint sync inside a job's task: restore the latest checkpoint before the user's code starts,
upload the checkpoint directory while it runs and when it ends, and never let a half-written
checkpoint replace a good one.

Each sync freezes the directory (a private copy), uploads it as a new version
``<prefix>/checkpoints/v000007/`` and only then points ``<prefix>/checkpoints/LATEST`` at it: one small
write that either happens or not, on a local store and on S3 alike. A failed or killed upload leaves
LATEST on the previous version. Older versions are pruned, keeping the last ``KEEP``.

When to sync: as soon as ``strato.runtime.checkpoint()`` says a save finished (it writes
``$STRATO_CONTROL_DIR/checkpoint.json``), or when the directory changed and then stayed the same for
one poll (scripts that just write files, SageMaker-style), and once more when the code has ended.
Each sync prints ``[strato] checkpoint saved vN at T: save Xs, upload Ys`` for the control plane.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

KEEP = 2
POLL = 0.5  # seconds between looks at the checkpoint directory


def say(line: str) -> None:
    sys.stdout.write(f"[strato] {line}\n")
    sys.stdout.flush()


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    files = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files.append((path.relative_to(directory).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(files)


class CheckpointSync:
    def __init__(self, store: Any, prefix: str, local_dir: Path, control_dir: Path | None, poll: float = POLL):
        self.store = store
        self.root = f"{prefix}/checkpoints"
        self.local_dir = local_dir
        self.control_file = control_dir / "checkpoint.json" if control_dir else None
        self.poll = poll
        self.version = 0
        self._synced: tuple[tuple[str, int, int], ...] = ()
        self._seen: tuple[tuple[str, int, int], ...] = ()
        self._request = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Restore ---------------------------------------------------------------------------------------
    def latest(self) -> str | None:
        try:
            return self.store.get_bytes(f"{self.root}/LATEST").decode().strip() or None
        except Exception:  # NotFound, or a store that cannot be read: no checkpoint to restore
            return None

    def restore(self) -> str | None:
        """Bring the latest complete checkpoint into the local directory; returns its version."""
        version = self.latest()
        if version is None:
            return None
        self.store.get_dir(f"{self.root}/{version}", self.local_dir)
        self.version = int(version.lstrip("v"))
        self._synced = self._seen = fingerprint(self.local_dir)
        say(f"checkpoint restored {version}")
        return version

    # Sync ------------------------------------------------------------------------------------------
    def _requested(self) -> dict[str, Any] | None:
        if self.control_file is None or not self.control_file.is_file():
            return None
        try:
            request = json.loads(self.control_file.read_text())
        except (OSError, ValueError):
            return None
        return request if int(request.get("sequence", 0)) > self._request else None

    def sync(self, *, force: bool = False) -> bool:
        """Upload the directory if it changed (and, unless asked for, has stopped changing)."""
        with self._lock:
            request = self._requested()
            current = fingerprint(self.local_dir)
            stable = current == self._seen
            self._seen = current
            if not current or current == self._synced or not (request or force or stable):
                return False
            started = time.time()
            with tempfile.TemporaryDirectory(prefix="strato-ckpt-") as frozen:
                # A private copy: the code may write again while we upload.
                shutil.copytree(self.local_dir, frozen, dirs_exist_ok=True)
                version = f"v{self.version + 1:06d}"
                self.store.put_dir(frozen, f"{self.root}/{version}")
                self.store.put_bytes(f"{self.root}/LATEST", version.encode())  # the commit point
            self.version += 1
            self._synced = current
            if request:
                self._request = int(request["sequence"])
            saved_at = float(request["saved_at"]) if request else max(m for _, _, m in current) / 1e9
            save = float(request["save_seconds"]) if request else 0.0
            say(f"checkpoint saved {version} at {saved_at:.3f}: save {save:.3f}s, upload {time.time() - started:.3f}s")
            self._prune()
            return True

    def _prune(self) -> None:
        if self.version > KEEP:
            self.store.delete(f"{self.root}/v{self.version - KEEP:06d}")

    # Background ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="strato-checkpoint-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.sync()
            except Exception as exc:  # keep training; the previous checkpoint stays the valid one
                say(f"checkpoint upload failed ({exc}); the previous checkpoint stays in use")

    def finish(self) -> None:
        """Stop the background sync and upload what the code left, if it changed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.sync(force=True)
        except Exception as exc:
            say(f"checkpoint upload failed ({exc}); the previous checkpoint stays in use")
