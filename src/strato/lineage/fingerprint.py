"""Dataset fingerprints: one sha256 that changes when a dataset's files change, for its lineage key.

- A local path (a plain path or ``file://``): every file under it, in sorted relative-path order, adds
  ``(relative path, size, sha256 of its bytes)``. Files are read in 1 MiB chunks, never whole; the
  order of creation, timestamps and permissions do not count, content and names do (links to files
  are read through; links to directories are not followed).
- An fsspec URL (``s3://bucket/prefix`` ...): one listing (``fs.find(detail=True)``), and every object
  adds ``(relative path, size, ETag)`` (or its checksum or modification time where the store has no
  ETag). Nothing is downloaded, so a terabyte prefix costs a listing.

The two schemes hash different things, so the same files copied from disk to S3 get different
fingerprints; each is stable for its own location. Names starting with ``.strato-`` (the artifact
store's completion marker and temporaries) are skipped, as downloads skip them.
``dataset_key(uri, fp)`` is the lineage key of a dataset: ``<uri>@<first 16 hex digits>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from strato.errors import InvalidArgument
from strato.store.artifacts.paths import is_reserved
from strato.store.artifacts.store import local_root, url_scheme

VERSION = "strato-dataset-fingerprint-v1"
CHUNK = 1024 * 1024
KEY_DIGITS = 16

# What stands for an object's content in a listing, most telling first (s3fs: ETag; gcsfs: md5Hash,
# etag; adlfs: etag, content_settings; local and others: mtime).
_VERSION_FIELDS = ("ETag", "etag", "md5Hash", "content_md5", "checksum", "mtime", "LastModified", "last_modified")


def fingerprint(uri: str, storage_options: dict[str, Any] | None = None) -> str:
    """The sha256 (hex) of the dataset at ``uri``: a file, a directory, or an fsspec prefix."""
    if not uri:
        raise InvalidArgument("cannot fingerprint a dataset: the URI is empty")
    if url_scheme(uri) == "file":
        return _digest(_local_entries(uri))
    return _digest(_remote_entries(uri, storage_options))


def dataset_key(uri: str, fp: str) -> str:
    """The lineage key of the dataset at ``uri`` with fingerprint ``fp``: ``<uri>@<fp[:16]>``."""
    return f"{uri}@{fp[:KEY_DIGITS]}"


def _digest(entries: Iterable[tuple[str, int, str]]) -> str:
    """sha256 over sorted (path, size, version) records, each field length-prefixed so no two lists
    of entries hash alike."""
    h = hashlib.sha256(VERSION.encode())
    for rel, size, version in sorted(entries):
        for text in (rel, str(size), version):
            data = text.encode("utf-8", "surrogateescape")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _local_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(posix path relative to ``root``, path) of every file below ``root``, following links to files."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_reserved(d))
        for name in sorted(filenames):
            if is_reserved(name):
                continue
            path = Path(directory, name)
            if path.is_file():  # not a dangling link, socket or pipe
                yield path.relative_to(root).as_posix(), path


def _local_entries(uri: str) -> list[tuple[str, int, str]]:
    root = local_root(uri)
    try:
        if root.is_file():
            return [(root.name, root.stat().st_size, _file_sha256(root))]
        if not root.is_dir():
            raise InvalidArgument(f"cannot fingerprint dataset {uri!r}: {root} does not exist", details={"uri": uri})
        return [(rel, path.stat().st_size, _file_sha256(path)) for rel, path in _local_files(root)]
    except PermissionError as e:
        raise InvalidArgument(f"cannot fingerprint dataset {uri!r}: {e}", details={"uri": uri}) from None


def _remote_entries(uri: str, options: dict[str, Any] | None) -> list[tuple[str, int, str]]:
    try:
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(uri, **{"use_listings_cache": False, **(options or {})})
    except ImportError as e:
        raise InvalidArgument(f"reading {uri!r} needs a package that is not installed: {e}") from e
    except ValueError as e:
        raise InvalidArgument(f"cannot fingerprint dataset {uri!r}: {e}") from e
    path = path.rstrip("/")
    try:
        listing: dict[str, dict[str, Any]] = fs.find(path, detail=True)
    except FileNotFoundError:
        listing = {}
    entries = []
    for name, info in listing.items():
        if info.get("type") == "directory":
            continue
        name = name.rstrip("/")
        if name == path:
            rel = path.rsplit("/", 1)[-1]
        elif name.startswith(f"{path}/"):
            rel = name[len(path) + 1 :]
        else:
            continue  # a sibling that shares the prefix (``data`` vs ``data2/...``)
        if any(is_reserved(part) for part in rel.split("/")):
            continue
        entries.append((rel, int(info.get("size") or 0), _object_version(info)))
    if not entries:
        raise InvalidArgument(
            f"cannot fingerprint dataset {uri!r}: no such file or prefix (or it holds no files)",
            details={"uri": uri},
        )
    return entries


def _object_version(info: dict[str, Any]) -> str:
    """What identifies an object's content in a listing, tagged with where it came from."""
    for field in _VERSION_FIELDS:
        value = info.get(field)
        if value not in (None, ""):
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            return f"{field}:{str(value).strip(chr(34))}"
    return "unknown"
