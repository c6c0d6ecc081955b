"""The artifact store: code snapshots, logs, model directories, outputs and checkpoints, by URI.

One small contract (``ArtifactStore``) with two backends chosen by URL scheme:

- ``LocalArtifactStore`` for a plain path or ``file://``: pathlib/shutil/os only. It never imports
  fsspec, because that import alone costs ~0.2 s and the store is used by short-lived processes (a
  job's entrypoint wrapper, the CLI).
- ``FsspecArtifactStore`` for everything else (``s3://bucket/prefix`` through s3fs), built with
  ``fsspec.core.url_to_fs`` and the caller's storage options.

The public methods live on the base class: each checks its path with ``safe_user_path`` and then calls
the backend's ``_``-method, so no backend can forget the check. Paths in and out are relative to the
store root and use ``/``; ``list`` returns root-relative paths so they can be fed straight back to
``get_bytes``. URIs follow fsspec's convention and are not percent-encoded (``file:///a b/c``).

Writes are atomic per file: local writes go to a temporary sibling and ``os.replace`` it in; an S3
PUT is atomic by itself. ``put_dir`` publishes a directory:

- local: the tree is copied into a temporary sibling directory, which is renamed into place (an
  existing directory there is renamed aside first and removed after), so readers see the old tree or
  the new one, never half of one (except for the instant between the two renames, when there is none).
- fsspec/S3: there is no multi-object rename, so the files are uploaded in place, stale keys of the
  previous version removed, and a ``.strato-complete`` marker written last. ``is_complete(path)``
  reads that marker. Both backends write it, so ``is_complete`` means the same thing everywhere.

Names starting with ``.strato-`` (temporaries, the marker) are the store's own: refused as user paths
and hidden from ``list``/``get_dir``.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strato._registry import Registry
from strato.errors import Conflict, InvalidArgument, NotFound
from strato.store.artifacts.paths import RESERVED_PREFIX, is_reserved, safe_user_path

COMPLETE_MARKER = f"{RESERVED_PREFIX}complete"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def url_scheme(url: str) -> str:
    """The scheme of a store URL; a plain path (or a Windows drive, ``C:\\x``) counts as ``file``."""
    if url.startswith("file:"):
        return "file"
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else "file"


def _local_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(absolute path, relative posix path) of every file under ``root``, skipping reserved names.

    Symlinks to files and directories are followed, as ``shutil.copytree`` does by default, so an
    upload holds the content a user sees in their directory.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not is_reserved(d)]
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        for name in filenames:
            if not is_reserved(name):
                yield base / name, name if rel_dir == "." else f"{rel_dir}/{name}"


def _source_dir(local_dir: str | os.PathLike[str]) -> Path:
    source = Path(local_dir)
    if not source.is_dir():
        raise NotFound(f"local directory not found: {source}", details={"path": str(source)})
    return source


def _source_file(local_path: str | os.PathLike[str]) -> Path:
    source = Path(local_path)
    if not source.is_file():
        raise NotFound(f"local file not found: {source}", details={"path": str(source)})
    return source


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise InvalidArgument(f"read_range needs offset >= 0 and length >= 0, got {offset} and {length}")


class ArtifactStore(abc.ABC):
    """A tree of artifacts under one root URL. ``ArtifactStore(url, options)`` picks the backend.

    Like ``pathlib.Path``, calling the base class returns an instance of the backend registered for
    the URL's scheme (``open_artifact_store`` does the same, as a plain function).
    """

    url: str

    def __new__(cls, url: str, options: dict[str, Any] | None = None) -> ArtifactStore:
        return super().__new__(backend_for(url) if cls is ArtifactStore else cls)

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        self.options = dict(options or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _not_found(self, rel: str, what: str = "artifact") -> NotFound:
        uri = self._uri(rel)
        return NotFound(f"{what} not found: {uri}", details={"uri": uri})

    # ---- public contract: check the path, then delegate ------------------------------------------

    def uri(self, path: str) -> str:
        return self._uri(safe_user_path(path))

    def put_bytes(self, path: str, data: bytes) -> str:
        rel = safe_user_path(path)
        self._put_bytes(rel, bytes(data))
        return self._uri(rel)

    def get_bytes(self, path: str) -> bytes:
        return self._get_bytes(safe_user_path(path))

    def put_file(self, local_path: str | os.PathLike[str], path: str) -> str:
        rel = safe_user_path(path)
        self._put_file(_source_file(local_path), rel)
        return self._uri(rel)

    def get_file(self, path: str, local_path: str | os.PathLike[str]) -> Path:
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._get_file(safe_user_path(path), dest)
        return dest

    def put_dir(self, local_dir: str | os.PathLike[str], path: str) -> str:
        """Publish ``local_dir`` as ``path``, replacing whatever was there; see the module doc."""
        rel = safe_user_path(path)
        self._put_dir(_source_dir(local_dir), rel)
        return self._uri(rel)

    def get_dir(self, path: str, local_dir: str | os.PathLike[str]) -> Path:
        """Download everything under ``path`` into ``local_dir`` (created; existing files kept)."""
        dest = Path(local_dir)
        self._get_dir(safe_user_path(path), dest)
        return dest

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file or a directory with something in it."""
        return self._exists(safe_user_path(path))

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file (``exists`` is also true for a directory)."""
        return self._is_file(safe_user_path(path))

    def is_complete(self, path: str) -> bool:
        """Whether ``put_dir`` finished publishing ``path`` (its completion marker is there)."""
        return self._is_file(f"{safe_user_path(path)}/{COMPLETE_MARKER}")

    def list(self, prefix: str = "") -> list[str]:
        """Root-relative paths of the files at or under ``prefix`` (all when empty), sorted."""
        rel = safe_user_path(prefix) if prefix else ""
        return sorted(p for p in self._list(rel) if not any(is_reserved(s) for s in p.split("/")))

    def size(self, path: str) -> int:
        return self._size(safe_user_path(path))

    def delete(self, path: str) -> None:
        """Delete a file or everything under a prefix. Deleting what is not there is not an error."""
        self._delete(safe_user_path(path))

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; short at the end of the file, empty past it."""
        _check_range(offset, length)
        return self._read_range(safe_user_path(path), offset, length)

    def local_path(self, path: str) -> Path | None:
        """The file's path on this machine when the store is local (lets callers skip a copy)."""
        return self._local_path(safe_user_path(path))

    # ---- what a backend implements (paths already checked and normalized) ------------------------

    @abc.abstractmethod
    def _uri(self, rel: str) -> str: ...
    @abc.abstractmethod
    def _put_bytes(self, rel: str, data: bytes) -> None: ...
    @abc.abstractmethod
    def _get_bytes(self, rel: str) -> bytes: ...
    @abc.abstractmethod
    def _put_file(self, source: Path, rel: str) -> None: ...
    @abc.abstractmethod
    def _get_file(self, rel: str, dest: Path) -> None: ...
    @abc.abstractmethod
    def _put_dir(self, source: Path, rel: str) -> None: ...
    @abc.abstractmethod
    def _get_dir(self, rel: str, dest: Path) -> None: ...
    @abc.abstractmethod
    def _exists(self, rel: str) -> bool: ...
    @abc.abstractmethod
    def _is_file(self, rel: str) -> bool: ...
    @abc.abstractmethod
    def _list(self, rel: str) -> builtins.list[str]: ...
    @abc.abstractmethod
    def _size(self, rel: str) -> int: ...
    @abc.abstractmethod
    def _delete(self, rel: str) -> None: ...
    @abc.abstractmethod
    def _read_range(self, rel: str, offset: int, length: int) -> bytes: ...

    def _local_path(self, rel: str) -> Path | None:
        return None


ARTIFACT_STORES: Registry[type[ArtifactStore]] = Registry("artifact store scheme")


def backend_for(url: str) -> type[ArtifactStore]:
    """The store class registered for the URL's scheme; ``InvalidArgument`` naming the known ones."""
    if not url:
        raise InvalidArgument("artifact store URL must not be empty")
    return ARTIFACT_STORES.get(url_scheme(url))


def open_artifact_store(url: str, options: dict[str, Any] | None = None) -> ArtifactStore:
    """The store for ``url``: a local path or ``file://``, or ``s3://bucket/prefix`` (with s3fs)."""
    return backend_for(url)(url, options)


def local_root(url: str) -> Path:
    """The absolute directory a plain path or ``file://`` URL names (``~`` expanded)."""
    rest = url
    if rest.startswith("file:"):
        rest = rest[len("file:") :]
        if rest.startswith("//"):
            rest = rest[2:]
            if rest.startswith("localhost/"):
                rest = rest[len("localhost") :]
    if not rest:
        raise InvalidArgument(f"local artifact store URL {url!r} names no directory")
    return Path(rest).expanduser().resolve()


@ARTIFACT_STORES.register("file")
class LocalArtifactStore(ArtifactStore):
    """A directory on this machine. The root is created on the first write."""

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        super().__init__(url, options)
        self.root = local_root(url)
        self.url = f"file://{self.root}"

    def _abs(self, rel: str) -> Path:
        return self.root / rel

    def _temp_sibling(self, target: Path) -> Path:
        # A unique name next to the target, so the final os.replace/rename stays on one filesystem and
        # is atomic. Created with open(..., "x")/mkdir rather than tempfile, whose 0600/0700 modes would
        # outlive the rename; these respect the umask like any other file.
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f"{RESERVED_PREFIX}tmp-{uuid.uuid4().hex}"

    def _publish_file(self, rel: str, write: Any) -> None:
        target = self._abs(rel)
        if target.is_dir():
            raise Conflict(f"cannot write {self._uri(rel)}: a directory is there", details={"path": rel})
        try:
            tmp = self._temp_sibling(target)
        except (FileExistsError, NotADirectoryError):
            raise Conflict(f"cannot write {self._uri(rel)}: a parent of it is a file", details={"path": rel}) from None
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _uri(self, rel: str) -> str:
        return f"file://{self._abs(rel)}"

    def _put_bytes(self, rel: str, data: bytes) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "xb") as f:
                f.write(data)

        self._publish_file(rel, write)

    def _get_bytes(self, rel: str) -> bytes:
        try:
            return self._abs(rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._not_found(rel) from None

    def _put_file(self, source: Path, rel: str) -> None:
        self._publish_file(rel, lambda tmp: shutil.copyfile(source, tmp))

    def _get_file(self, rel: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._abs(rel), dest)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._not_found(rel) from None

    def _put_dir(self, source: Path, rel: str) -> None:
        target = self._abs(rel)
        try:
            tmp = self._temp_sibling(target)
        except (FileExistsError, NotADirectoryError):
            raise Conflict(f"cannot write {self._uri(rel)}: a parent of it is a file", details={"path": rel}) from None
        old: Path | None = None
        try:
            tmp.mkdir()
            shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=_ignore_reserved)
            (tmp / COMPLETE_MARKER).touch()
            if target.exists() or target.is_symlink():
                old = self._temp_sibling(target)
                os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise Conflict(
                        f"{self._uri(rel)} was written by someone else at the same time; retry",
                        details={"path": rel},
                    ) from None
                raise
        finally:
            for leftover in (tmp, old):
                if leftover is not None and leftover.exists():
                    _remove(leftover)

    def _get_dir(self, rel: str, dest: Path) -> None:
        source = self._abs(rel)
        if not source.is_dir():
            raise self._not_found(rel, "artifact directory")
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=_ignore_reserved)

    def _exists(self, rel: str) -> bool:
        # No empty directories are left behind (delete prunes them), so "exists" on disk means
        # "a file, or a directory with something in it" as on S3.
        return self._abs(rel).exists()

    def _is_file(self, rel: str) -> bool:
        return self._abs(rel).is_file()

    def _list(self, rel: str) -> builtins.list[str]:
        start = self._abs(rel)
        if start.is_file():
            return [rel]
        if not start.is_dir():
            return []
        return [f"{rel}/{sub}" if rel else sub for _, sub in _local_files(start)]

    def _size(self, rel: str) -> int:
        target = self._abs(rel)
        if not target.is_file():
            raise self._not_found(rel)
        return target.stat().st_size

    def _delete(self, rel: str) -> None:
        target = self._abs(rel)
        if target.exists() or target.is_symlink():
            _remove(target)
        # Prune the parents this left empty, so exists() on a prefix keeps meaning "has content".
        parent = target.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _read_range(self, rel: str, offset: int, length: int) -> bytes:
        try:
            with open(self._abs(rel), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._not_found(rel) from None

    def _local_path(self, rel: str) -> Path | None:
        return self._abs(rel)


def _ignore_reserved(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if is_reserved(n)}


def _remove(path: Path) -> None:
    """Remove a file or a tree; something removed concurrently is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


@ARTIFACT_STORES.register("s3", "s3a")
class FsspecArtifactStore(ArtifactStore):
    """Any fsspec filesystem; registered for S3 (s3fs). ``options`` are fsspec storage options.

    Listing caches are off unless the options turn them on: other processes (a job writing logs, the
    control plane reading them) change the bucket behind this one's back, and a stale listing would
    make ``exists``/``list`` lie.
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        super().__init__(url, options)
        from fsspec.core import url_to_fs

        try:
            self._fs, root = url_to_fs(url, **{"use_listings_cache": False, **self.options})
        except ImportError as e:
            raise InvalidArgument(f"artifact store {url!r} needs a package that is not installed: {e}") from e
        self._root = root.rstrip("/")
        self.url = url.rstrip("/")

    def _full(self, rel: str) -> str:
        return f"{self._root}/{rel}" if rel else self._root

    def _rel(self, full: str) -> str:
        return full[len(self._root) + 1 :]

    def _files_under(self, rel: str) -> builtins.list[str]:
        """Full paths of the objects strictly below ``rel/`` (not ``rel`` itself), reserved included."""
        full = self._full(rel)
        return [p for p in self._fs.find(full) if p.startswith(f"{full}/")]

    def _uri(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def _put_bytes(self, rel: str, data: bytes) -> None:
        self._fs.pipe_file(self._full(rel), data)

    def _get_bytes(self, rel: str) -> bytes:
        try:
            data: bytes = self._fs.cat_file(self._full(rel))
        except (FileNotFoundError, IsADirectoryError):
            raise self._not_found(rel) from None
        return data

    def _put_file(self, source: Path, rel: str) -> None:
        self._fs.put_file(str(source), self._full(rel))

    def _get_file(self, rel: str, dest: Path) -> None:
        if not self._is_file(rel):
            raise self._not_found(rel)
        self._fs.get_file(self._full(rel), str(dest))

    def _put_dir(self, source: Path, rel: str) -> None:
        full = self._full(rel)
        marker = f"{full}/{COMPLETE_MARKER}"
        # The marker goes first, so nobody takes the half-replaced directory for a complete one.
        if self._fs.exists(marker):
            self._fs.rm_file(marker)
        before = set(self._files_under(rel))
        pairs = [(str(path), f"{full}/{sub}") for path, sub in _local_files(source)]
        if pairs:
            # Lists on both sides: fsspec skips its own path expansion and uploads concurrently.
            self._fs.put([lp for lp, _ in pairs], [rp for _, rp in pairs])
        stale = sorted(before - {rp for _, rp in pairs} - {marker})
        if stale:
            self._fs.rm(stale)
        self._fs.pipe_file(marker, b"")

    def _get_dir(self, rel: str, dest: Path) -> None:
        files = self._files_under(rel)
        if not files:
            raise self._not_found(rel, "artifact directory")
        full = self._full(rel)
        wanted = [p for p in files if not any(is_reserved(s) for s in p[len(full) + 1 :].split("/"))]
        dest.mkdir(parents=True, exist_ok=True)
        if wanted:
            self._fs.get(wanted, [str(dest / p[len(full) + 1 :]) for p in wanted])

    def _exists(self, rel: str) -> bool:
        return bool(self._fs.exists(self._full(rel)))

    def _is_file(self, rel: str) -> bool:
        return bool(self._fs.isfile(self._full(rel)))

    def _list(self, rel: str) -> builtins.list[str]:
        full = self._full(rel)
        # find() on a file returns the file itself; anything else must be strictly below the prefix
        # (a listing of "a" must not pick up "ab/x").
        return [self._rel(p) for p in self._fs.find(full) if (rel and p == full) or p.startswith(f"{full}/")]

    def _size(self, rel: str) -> int:
        try:
            info = self._fs.info(self._full(rel))
        except FileNotFoundError:
            raise self._not_found(rel) from None
        if info.get("type") != "file":
            raise self._not_found(rel)
        return int(info["size"])

    def _delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(self._full(rel), recursive=True)

    def _read_range(self, rel: str, offset: int, length: int) -> bytes:
        if length == 0:
            if not self._is_file(rel):
                raise self._not_found(rel)
            return b""
        try:
            data: bytes = self._fs.cat_file(self._full(rel), start=offset, end=offset + length)
        except (FileNotFoundError, IsADirectoryError):
            raise self._not_found(rel) from None
        except OSError as e:
            # S3 answers 416 (s3fs: EINVAL) for a range that starts at or past the end of the object;
            # for a log being tailed that just means "nothing new yet".
            if e.errno == errno.EINVAL and self._is_file(rel):
                return b""
            raise
        return data
