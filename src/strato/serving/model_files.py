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
