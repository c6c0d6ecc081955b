"""The artifact store (local directory or ``s3://``) and the transfers around it; see ``store.py``."""

from strato.store.artifacts.paths import safe_path
from strato.store.artifacts.store import ArtifactStore, open_artifact_store
from strato.store.artifacts.transfer import download_uri, extract_snapshot, snapshot_dir, uri_exists

__all__ = [
    "ArtifactStore",
    "download_uri",
    "extract_snapshot",
    "open_artifact_store",
    "safe_path",
    "snapshot_dir",
    "uri_exists",
]
