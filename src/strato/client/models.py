"""The model registry through the SDK: register, read, aliases, tags, approvals, model cards.

v = client.models.register("iris", job="iris-tree", aliases=["challenger"])
client.models.approve("iris", v["version"], reason="beats the champion on holdout")
client.models.get("iris", version="champion")      # a version by number or alias
"""

from __future__ import annotations

import builtins
import getpass
from typing import Any
from urllib.parse import quote

from strato.client.http import Transport

BASE = "/api/v1/models"


def current_user() -> str:
    """Who this process acts as (the OS user), the default approver and author."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _p(part: str) -> str:
    return quote(str(part), safe="")


class ModelsClient:
    def __init__(self, transport: Transport):
        self._t = transport

    def _version(self, name: str, version: str | int) -> str:
        return f"{BASE}/{_p(name)}/versions/{_p(str(version))}"

    # Register and read --------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        job: str | None = None,
        run_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        aliases: builtins.list[str] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """A new version of model ``name`` from a Completed training job or an MLflow run."""
        body = {
            "job": job,
            "run_id": run_id,
            "description": description,
            "tags": tags or {},
            "aliases": aliases or [],
            "actor": actor or current_user(),
        }
        return dict(self._t.json("POST", f"{BASE}/{_p(name)}/versions", json=body))

    def list(self) -> builtins.list[dict[str, Any]]:
        return list(self._t.json("GET", BASE))

    def get(self, name: str, version: str | int | None = None) -> dict[str, Any]:
        """The model with all its versions, or one version (by number or alias)."""
        path = f"{BASE}/{_p(name)}" if version is None else self._version(name, version)
        return dict(self._t.json("GET", path))

    def update(
        self,
        name: str,
        version: str | int | None = None,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Set the description and/or tags of a model, or of one of its versions."""
        path = f"{BASE}/{_p(name)}" if version is None else self._version(name, version)
        return dict(self._t.json("PATCH", path, json={"description": description, "tags": tags or {}}))

    def delete_tag(self, name: str, key: str, version: str | int | None = None) -> None:
        path = f"{BASE}/{_p(name)}" if version is None else self._version(name, version)
        self._t.request("DELETE", f"{path}/tags/{_p(key)}")

    def delete_version(self, name: str, version: str | int, *, actor: str | None = None) -> None:
        self._t.request("DELETE", self._version(name, version), params={"actor": actor or current_user()})

    # Aliases ------------------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str | int, *, actor: str | None = None) -> dict[str, Any]:
        body = {"version": str(version), "actor": actor or current_user()}
        return dict(self._t.json("PUT", f"{BASE}/{_p(name)}/aliases/{_p(alias)}", json=body))

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        path = f"{BASE}/{_p(name)}/aliases/{_p(alias)}"
        self._t.request("DELETE", path, params={"actor": actor or current_user()})

    # Approvals ----------------------------------------------------------------------------------------
    def approve(self, name: str, version: str | int, *, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Approve a version (the model's ApprovalPolicy is checked first); the answer has the status,
        ``approvals`` (count, required, by), ``checks`` and the ``actions`` on_approval took."""
        body = {"actor": actor or current_user(), "reason": reason}
        return dict(self._t.json("POST", f"{self._version(name, version)}/approve", json=body))

    def reject(self, name: str, version: str | int, *, reason: str, actor: str | None = None) -> dict[str, Any]:
        body = {"actor": actor or current_user(), "reason": reason}
        return dict(self._t.json("POST", f"{self._version(name, version)}/reject", json=body))

    def history(self, name: str, version: str | int) -> builtins.list[dict[str, Any]]:
        """The version's audit log: submissions, approvals, rejections, aliases, deploy requests."""
        return list(self._t.json("GET", f"{self._version(name, version)}/history"))

    # Model cards --------------------------------------------------------------------------------------
    def set_card(
        self, name: str, version: str | int, card: dict[str, Any], *, author: str | None = None
    ) -> dict[str, Any]:
        body = {"card": card, "author": author or current_user()}
        return dict(self._t.json("PUT", f"{self._version(name, version)}/card", json=body))

    def get_card(self, name: str, version: str | int, revision: int | None = None) -> dict[str, Any]:
        params = {"revision": revision} if revision is not None else None
        return dict(self._t.json("GET", f"{self._version(name, version)}/card", params=params))

    def card_history(self, name: str, version: str | int) -> builtins.list[dict[str, Any]]:
        return list(self._t.json("GET", f"{self._version(name, version)}/card/history"))
