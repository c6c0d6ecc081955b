"""Checkpoint sync inside a task: versions, the LATEST commit point, and failures that keep the last
good checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from strato.jobs.checkpoints import CheckpointSync
from strato.store.artifacts import ArtifactStore, open_artifact_store


class FailingPutDir:
    """A store whose directory uploads die half-way (a full disk or a killed upload): the first file
    is written, then it fails. A fault we cannot cause on demand with a real store."""

    def __init__(self, store: ArtifactStore):
        self.store = store

    def put_dir(self, local_dir: str, path: str) -> str:
        first = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())[0]
        self.store.put_bytes(f"{path}/{first.name}", first.read_bytes())
        raise OSError(28, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "store"))


def make_sync(tmp_path: Path, store: Any, name: str = "work") -> CheckpointSync:
    local = tmp_path / name / "checkpoints"
    local.mkdir(parents=True)
    control = tmp_path / name / ".strato"
    control.mkdir()
    return CheckpointSync(store, "jobs/j/1", local, control)


def request(sync: CheckpointSync, sequence: int, saved_at: float = 1000.0) -> None:
    assert sync.control_file is not None
    sync.control_file.write_text(json.dumps({"sequence": sequence, "saved_at": saved_at, "save_seconds": 0.25}))


def test_versions_and_restore(tmp_path: Path, store: ArtifactStore, capsys: pytest.CaptureFixture[str]) -> None:
    sync = make_sync(tmp_path, store)
    assert sync.restore() is None and not sync.sync()  # nothing yet
    (sync.local_dir / "model.pt").write_bytes(b"epoch-1")
    request(sync, 1)
    assert sync.sync()  # asked for by strato.runtime.checkpoint(): at once
    assert "checkpoint saved v000001 at 1000.000: save 0.250s" in capsys.readouterr().out
    assert not sync.sync()  # unchanged: nothing to upload
    (sync.local_dir / "model.pt").write_bytes(b"epoch-2")
    assert not sync.sync()  # changed but not yet seen stable
    assert sync.sync()  # same as the last look: a script that just writes files is synced too
    assert store.get_bytes("jobs/j/1/checkpoints/LATEST") == b"v000002"

    restored = make_sync(tmp_path, store, "next-attempt")
    assert restored.restore() == "v000002"
    assert (restored.local_dir / "model.pt").read_bytes() == b"epoch-2"
    (restored.local_dir / "model.pt").write_bytes(b"epoch-3")
    request(restored, 1)
    restored.sync()
    assert store.get_bytes("jobs/j/1/checkpoints/LATEST") == b"v000003"
    assert not store.exists("jobs/j/1/checkpoints/v000001")  # pruned: the last two are kept


def test_a_failed_upload_keeps_the_previous_checkpoint(tmp_path: Path, store: ArtifactStore) -> None:
    sync = make_sync(tmp_path, store)
    (sync.local_dir / "a.bin").write_bytes(b"good-a")
    (sync.local_dir / "b.bin").write_bytes(b"good-b")
    request(sync, 1)
    sync.sync()
    sync.store = FailingPutDir(store)
    (sync.local_dir / "a.bin").write_bytes(b"half-a")
    (sync.local_dir / "b.bin").write_bytes(b"half-b")
    request(sync, 2)
    with pytest.raises(OSError, match="No space left"):
        sync.sync()
    assert store.get_bytes("jobs/j/1/checkpoints/LATEST") == b"v000001"
    fresh = make_sync(tmp_path, store, "restart")
    fresh.restore()
    assert (fresh.local_dir / "a.bin").read_bytes() == b"good-a" and (
        fresh.local_dir / "b.bin"
    ).read_bytes() == b"good-b"


def test_background_failures_are_reported_and_the_job_goes_on(
    tmp_path: Path, store: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    sync = make_sync(tmp_path, FailingPutDir(store))
    (sync.local_dir / "a.bin").write_bytes(b"x")
    request(sync, 1)
    sync.finish()  # the final sync fails: reported on a marker line, not raised
    assert "checkpoint upload failed ([Errno 28] No space left on device)" in capsys.readouterr().out
    assert not store.exists("jobs/j/1/checkpoints/LATEST")


KILLED_UPLOADER = """
import sys
from pathlib import Path
from strato.jobs.checkpoints import CheckpointSync
from strato.store.artifacts import open_artifact_store
sync = CheckpointSync(open_artifact_store(sys.argv[1]), "jobs/j/1", Path(sys.argv[2]), None)
sync.version = 1
sync.sync(force=True)
"""


def test_a_kill_during_the_upload_keeps_the_previous_checkpoint(tmp_path: Path, store: ArtifactStore) -> None:
    """The real fault: the uploading process is SIGKILLed while the new version is being written."""
    sync = make_sync(tmp_path, store)
    (sync.local_dir / "state.bin").write_bytes(b"good")
    request(sync, 1)
    sync.sync()
    (sync.local_dir / "state.bin").write_bytes(b"newer")
    big = sync.local_dir / "shards"
    big.mkdir()
    for i in range(600):  # enough files that the upload takes a while
        (big / f"{i:04d}.bin").write_bytes(bytes(256 * 1024))
    versions = tmp_path / "store" / "jobs" / "j" / "1" / "checkpoints"
    uploader = subprocess.Popen([sys.executable, "-c", KILLED_UPLOADER, str(tmp_path / "store"), str(sync.local_dir)])
    deadline = time.monotonic() + 60
    while not any(p.name not in ("LATEST", "v000001") for p in versions.iterdir()):
        assert uploader.poll() is None, "the upload finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    uploader.send_signal(signal.SIGKILL)
    uploader.wait(30)
    assert store.get_bytes("jobs/j/1/checkpoints/LATEST") == b"v000001"
    fresh = make_sync(tmp_path, store, "after-kill")
    assert fresh.restore() == "v000001"
    assert (fresh.local_dir / "state.bin").read_bytes() == b"good" and not (fresh.local_dir / "shards").exists()
