"""Client-side resolution of local paths in a spec: the code directory and local input channels are
snapshotted (deterministic tar.gz, content-addressed) and uploaded once; the spec then names them as
``strato://snapshots/<sha256>.tar.gz``, which works wherever the control plane and its tasks run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from strato.client.http import Transport
from strato.errors import InvalidArgument
from strato.specs import TrainingJob
from strato.store.artifacts import snapshot_dir

SNAPSHOT_PREFIX = "snapshots/"


def _is_local(source: str) -> bool:
    return "://" not in source


def upload_snapshot(transport: Transport, directory: Path) -> str:
    data, digest = snapshot_dir(directory)
    key = f"{SNAPSHOT_PREFIX}{digest}.tar.gz"
    if transport.request("HEAD", f"/api/v1/artifacts/{key}").status_code != 200:
        transport.request("PUT", f"/api/v1/artifacts/{key}", content=data)
    return f"strato://{key}"


def _snapshot_path(transport: Transport, path: Path) -> str:
    if path.is_dir():
        return upload_snapshot(transport, path)
    with tempfile.TemporaryDirectory() as tmp:  # a single file becomes a one-file channel
        link = Path(tmp) / path.name
        shutil.copyfile(path, link)
        return upload_snapshot(transport, Path(tmp))


def resolve_local_paths(spec: TrainingJob, transport: Transport, base_dir: Path) -> TrainingJob:
    """Upload what ``spec`` names on this machine; paths are relative to ``base_dir`` (the YAML's folder)."""
    updates: dict[str, object] = {}
    if spec.code and _is_local(spec.code):
        code = (base_dir / spec.code).resolve()
        if not code.is_dir():
            raise InvalidArgument(f"code: directory {spec.code!r} does not exist (looked in {code})")
        updates["code"] = upload_snapshot(transport, code)
    inputs = dict(spec.inputs)
    for channel, source in spec.inputs.items():
        if _is_local(source):
            path = (base_dir / source).resolve()
            if not path.exists():
                raise InvalidArgument(f"inputs.{channel}: path {source!r} does not exist (looked in {path})")
            inputs[channel] = _snapshot_path(transport, path)
    if inputs != spec.inputs:
        updates["inputs"] = inputs
    return spec.model_copy(update=updates) if updates else spec
