"""What every resource handle of the SDK shares: the data the server returned and its state."""

from __future__ import annotations

from typing import Any

TERMINAL = {"Completed", "Failed", "Stopped"}
LONG_POLL = 30.0  # seconds one wait request may be held by the server


class ResourceHandle:
    def __init__(self, data: dict[str, Any]):
        self.data = data

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def status(self) -> str:
        return str(self.data["status"]["state"])

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def message(self) -> str:
        return str(self.data["status"].get("message", ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, status={self.status!r})"
