"""Where a model's files are on this machine, in the standard library only: a replica's launcher asks
before anything heavy is imported (a warm start must not pay for pandas)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def cache_name(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:24]


def local_model_dir(uri: str, cache: Path) -> Path | None:
    """Where the model at ``uri`` is on this machine without downloading: a local path, or the cache's
    copy of a remote model once one was downloaded; else None."""
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if ":/" not in uri:
        return Path(uri)
    target = cache / cache_name(uri)
    return target if (target / "MLmodel").is_file() else None


REMOTE_MODELS = ("models:/", "runs:/", "s3://", "mlflow-artifacts:/")


def local_model_problem(model: str) -> str | None:
    """What is wrong with a local model path as the server sees it (None when it is fine or remote)."""
    if model.startswith(REMOTE_MODELS):
        return None
    path = Path(model.removeprefix("file://"))
    if not path.is_absolute():
        return f"model path {model!r} must be absolute on the server"
    if not (path / "MLmodel").is_file():
        return f"model {model} " + (
            "does not exist" if not path.exists() else "is not an MLflow model (no MLmodel file)"
        )
    return None
