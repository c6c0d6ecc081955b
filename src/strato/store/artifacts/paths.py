"""Checking the relative paths that users and API calls give to the artifact store.

Every store method goes through ``safe_path`` first, so a path from a request can never leave the
store's root (``..``, an absolute path) or mean different things on different backends (a backslash is
a separator on Windows and a plain character in an S3 key). Unicode and spaces are fine: they are
ordinary characters for both a local filesystem and S3.
"""

from __future__ import annotations

import re
import unicodedata

from strato.errors import InvalidArgument

# Names the store writes for its own bookkeeping (temporary files, the completion marker of a
# directory) start with this; they are hidden from listings and refused as user paths so a user file
# can never be mistaken for one of them.
RESERVED_PREFIX = ".strato-"

_DRIVE = re.compile(r"^[A-Za-z]:")


def _reject(path: str, rule: str) -> InvalidArgument:
    return InvalidArgument(f"invalid artifact path {path!r}: {rule}", details={"path": path})


def safe_path(path: str) -> str:
    """Return ``path`` as a normalized relative posix path, or raise ``InvalidArgument``.

    Normalizing drops empty and ``.`` segments (``./a//b/`` becomes ``a/b``); it never resolves ``..``,
    which is refused outright rather than interpreted.
    """
    if not isinstance(path, str):
        raise InvalidArgument(f"invalid artifact path {path!r}: must be a string")
    if not path:
        raise _reject(path, "must not be empty")
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        raise _reject(path, "must not contain NUL or other control characters")
    if "\\" in path:
        raise _reject(path, "must use '/' as separator, not backslashes")
    if path.startswith("/") or _DRIVE.match(path):
        raise _reject(path, "must be relative, not absolute")
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise _reject(path, "must not contain '..' segments")
    if not segments:
        raise _reject(path, "must name something below the store root")
    return "/".join(segments)


def is_reserved(name: str) -> bool:
    """Whether a single path segment is one of the store's own bookkeeping names."""
    return name.startswith(RESERVED_PREFIX)


def safe_user_path(path: str) -> str:
    """``safe_path`` plus refusing the store's reserved names; what the store methods accept."""
    normalized = safe_path(path)
    if any(is_reserved(s) for s in normalized.split("/")):
        raise _reject(path, f"segments starting with {RESERVED_PREFIX!r} are reserved for the store")
    return normalized
