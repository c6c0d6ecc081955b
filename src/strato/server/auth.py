"""API tokens: created at first start (0600 in the home), required when the server listens beyond
loopback, and checked in constant time."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from strato.errors import Unauthenticated


def ensure_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(header: str | None, token: str, *, required: bool, token_path: Path) -> None:
    """Raise ``Unauthenticated`` unless the request may go on. A token that is sent is always checked."""
    if not header:
        if required:
            raise Unauthenticated(
                f"this Strato server requires an API token: send 'Authorization: Bearer <token>' "
                f"(the token is in {token_path} on the server; the SDK and CLI read STRATO_TOKEN)"
            )
        return
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise Unauthenticated(f"wrong API token: use the token in {token_path} on the server (STRATO_TOKEN)")
