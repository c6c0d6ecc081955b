"""Moving artifacts between URIs and this machine: job input channels and code snapshots.

``download_uri``/``uri_exists`` accept any source a user may name for an input channel: a local path,
``file://`` or an fsspec URL such as ``s3://bucket/prefix``. Local sources never import fsspec.

``snapshot_dir`` packs a code directory as a deterministic ``.tar.gz`` (sorted entries, zeroed
mtime/uid/gid/names, normalized modes, gzip header without time or name), so equal code gives equal
bytes and an equal sha256: snapshots are stored content-addressed and uploaded once.
``extract_snapshot`` checks every member with the standard library's ``data`` filter before writing
anything, so a crafted archive cannot write outside its destination.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from strato.errors import InvalidArgument, NotFound
from strato.store.artifacts.paths import is_reserved, safe_path
from strato.store.artifacts.store import local_root, url_scheme
from strato.units import format_bytes

DEFAULT_MAX_SNAPSHOT_BYTES = 500 * 1024**2

# Never code: version control, environments and caches. They are big, machine-specific, and would
# make two snapshots of the same code differ.
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc",)


def _remote_fs(uri: str, options: dict[str, Any] | None) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(uri, **{"use_listings_cache": False, **(options or {})})
    except ImportError as e:
        raise InvalidArgument(f"reading {uri!r} needs a package that is not installed: {e}") from e
    except ValueError as e:
        raise InvalidArgument(f"cannot read {uri!r}: {e}") from e
    return fs, path.rstrip("/")


def uri_exists(uri: str, options: dict[str, Any] | None = None) -> bool:
    """Whether ``uri`` names an existing file or a directory/prefix with something in it."""
    if url_scheme(uri) == "file":
        return local_root(uri).exists()
    fs, path = _remote_fs(uri, options)
    return bool(fs.exists(path))


def download_uri(uri: str, local_dir: Path, options: dict[str, Any] | None = None) -> Path:
    """Copy a file or a directory tree named by ``uri`` into ``local_dir``; return what landed.

    A file lands as ``local_dir/<basename>``; a directory's contents land directly in ``local_dir``
    (as SageMaker materializes an S3 prefix into a channel directory). Remote keys are checked like
    user paths, so a key such as ``a/../../x`` cannot write outside ``local_dir``.
    """
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    if url_scheme(uri) == "file":
        return _copy_local(uri, local_dir)
    fs, path = _remote_fs(uri, options)
    if fs.isfile(path):
        dest = local_dir / path.rsplit("/", 1)[-1]
        fs.get_file(path, str(dest))
        return dest
    files = [p for p in fs.find(path) if p.startswith(f"{path}/")]
    if not files:
        raise NotFound(f"input not found: {uri} holds no files", details={"uri": uri})
    remote, local = [], []
    for p in files:
        rel = _checked_key(uri, p[len(path) + 1 :])
        if not any(is_reserved(s) for s in rel.split("/")):
            remote.append(p)
            local.append(str(local_dir / rel))
    if remote:
        # Lists on both sides: fsspec downloads them concurrently without re-listing.
        fs.get(remote, local)
    return local_dir


def _checked_key(uri: str, rel: str) -> str:
    try:
        return safe_path(rel)
    except InvalidArgument as e:
        raise InvalidArgument(f"refusing to download from {uri}: {e.message}", details={"uri": uri}) from None


def _ignore_reserved(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if is_reserved(n)}


def _copy_local(uri: str, local_dir: Path) -> Path:
    source = local_root(uri)
    if source.is_file():
        dest = local_dir / source.name
        shutil.copyfile(source, dest)
        return dest
    if source.is_dir():
        shutil.copytree(source, local_dir, dirs_exist_ok=True, ignore=_ignore_reserved)
        return local_dir
    raise NotFound(f"input not found: {uri}", details={"uri": uri})


# ---- code snapshots ----------------------------------------------------------------------------


def _excluded(name: str, is_dir: bool) -> bool:
    return name in EXCLUDED_DIRS if is_dir else name.endswith(EXCLUDED_SUFFIXES)


def _tarinfo(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _link_info(root: Path, path: Path, rel: str) -> tarfile.TarInfo:
    """A symlink stays a symlink when it points inside the snapshot; anything else is refused."""
    target = os.readlink(path)
    resolved = (path.parent / target).resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidArgument(
            f"{path} is a link to {target}, outside the code directory {root}; "
            "move data to an input channel instead of linking it into the code"
        )
    info = _tarinfo(rel, tarfile.SYMTYPE, 0o777)
    info.linkname = os.path.relpath(resolved, path.parent).replace(os.sep, "/")
    return info


def snapshot_dir(local_dir: Path, max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES) -> tuple[bytes, str]:
    """Pack ``local_dir`` as a deterministic ``.tar.gz``; return ``(data, sha256 hex of data)``.

    Raises ``InvalidArgument`` when the files add up to more than ``max_bytes``: a code snapshot is
    copied for every job, so data belongs in an input channel.
    """
    root = Path(local_dir).resolve()
    if not root.is_dir():
        raise NotFound(f"code directory not found: {local_dir}", details={"path": str(local_dir)})
    buffer = io.BytesIO()
    total = 0
    # mtime=0 and an empty filename keep the gzip header free of time and local names.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            rel_dir = base.relative_to(root).as_posix()
            prefix = "" if rel_dir == "." else f"{rel_dir}/"
            entries = sorted(
                [(n, True) for n in dirnames if not _excluded(n, True)]
                + [(n, False) for n in filenames if not _excluded(n, False)]
            )
            # os.walk does not descend into symlinked directories; they are archived as links below.
            dirnames[:] = [n for n, is_dir in entries if is_dir and not (base / n).is_symlink()]
            for name, is_dir in entries:
                path, rel = base / name, prefix + name
                if path.is_symlink():
                    tar.addfile(_link_info(root, path, rel))
                elif is_dir:
                    tar.addfile(_tarinfo(rel, tarfile.DIRTYPE, 0o755))
                elif path.is_file():
                    total += _add_file(tar, path, rel)
                    if total > max_bytes:
                        raise InvalidArgument(
                            f"code directory {local_dir} holds more than {format_bytes(max_bytes)} "
                            f"(the snapshot limit); move data to an input channel and keep only code in it",
                            details={"path": str(local_dir), "max_bytes": max_bytes},
                        )
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _add_file(tar: tarfile.TarFile, path: Path, rel: str) -> int:
    with open(path, "rb") as f:
        stat = os.fstat(f.fileno())
        info = _tarinfo(rel, tarfile.REGTYPE, 0o755 if stat.st_mode & 0o111 else 0o644)
        info.size = stat.st_size
        tar.addfile(info, f)
    return info.size


def extract_snapshot(data: bytes, dest: Path) -> Path:
    """Unpack a snapshot into ``dest`` after checking every member; refuse unsafe ones.

    Members that are absolute, contain ``..``, are links pointing outside ``dest``, or are devices
    raise ``InvalidArgument`` naming the member, and nothing is written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, dest)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.ReadError, EOFError, gzip.BadGzipFile) as e:
        raise InvalidArgument(f"not a valid code snapshot (.tar.gz): {e}") from None
    return dest


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    # The "data" filter rejects "..", links leaving dest and device files, but it silently turns an
    # absolute name into a relative one; a snapshot we wrote never has one, so refuse it instead.
    problem = "it is an absolute path" if member.name.startswith("/") else None
    if problem is None:
        try:
            tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as e:
            problem = str(e)
    if problem is not None:
        raise InvalidArgument(
            f"refusing to extract snapshot: member {member.name!r} is unsafe ({problem})",
            details={"member": member.name},
        )
