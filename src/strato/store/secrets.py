"""Encryption of secret values at rest (job secrets), with a key kept in the workspace home (0600).

Secrets are stored as ``enc:v1:<fernet token>``; only the reconciler that starts a task decrypts them,
and only into the task's environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from strato.errors import StratoError

PREFIX = "enc:v1:"
MASK = "***"


class SecretBox:
    def __init__(self, key_path: Path):
        from cryptography.fernet import Fernet

        self._fernet = Fernet(self._load_or_create_key(key_path))

    @staticmethod
    def _load_or_create_key(path: Path) -> bytes:
        from cryptography.fernet import Fernet

        if path.exists():
            return path.read_bytes().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # O_EXCL: when two processes race to create the key, one wins and the other reads it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    def encrypt(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise StratoError("a stored secret cannot be decrypted: the workspace's secret.key changed") from None
