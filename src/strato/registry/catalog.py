"""Reading the registry: registered models and their versions from MLflow, with Strato's approval
status, approvals and aliases merged in; and resolving a version given by number or alias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strato.errors import InvalidArgument, NotFound
from strato.registry.approvals import ApprovalEvent, ApprovalLog, summarize
from strato.registry.mlflow_access import Mlflow, error_code, is_mlflow_error, translated
from strato.registry.policies import PolicyService

STATUS_TAG = "strato.approval_status"
APPROVALS_TAG = "strato.approvals"
PAGE = 1000


@dataclass
class RegistryContext:
    mlflow: Mlflow
    log: ApprovalLog
    policies: PolicyService


def check_version(version: str) -> str:
    text = str(version).strip()
    if not text.isdigit():
        raise InvalidArgument(f"version {version!r} is not a version number (1, 2, ...) nor an alias")
    return str(int(text))


class Catalog:
    def __init__(self, ctx: RegistryContext):
        self.ctx = ctx

    # MLflow objects ---------------------------------------------------------------------------------
    def model(self, name: str) -> Any:
        client = self.ctx.mlflow.client()
        try:
            return client.get_registered_model(name)
        except Exception as exc:
            if is_mlflow_error(exc) and error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(
                    f"registered model {name!r} not found; register it with "
                    f"`strato models register --run RUN_ID --name {name}` (or --job JOB)",
                    details={"model": name},
                ) from None
            raise

    def version(self, name: str, ref: str) -> Any:
        """The MLflow model version ``ref`` (a number, or an alias) of model ``name``."""
        ref = str(ref).strip()
        if not ref.isdigit():
            return self.by_alias(name, ref)
        version = check_version(ref)
        client = self.ctx.mlflow.client()
        try:
            return client.get_model_version(name, version)
        except Exception as exc:
            if is_mlflow_error(exc) and error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                self.model(name)  # a missing model is the clearer message
                raise NotFound(
                    f"model {name!r} has no version {version} (versions: {self._numbers(name)})",
                    details={"model": name, "version": version},
                ) from None
            raise

    def by_alias(self, name: str, alias: str) -> Any:
        client = self.ctx.mlflow.client()
        try:
            return client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            if not is_mlflow_error(exc):
                raise
        model = self.model(name)
        last = self.ctx.log.last_alias_target(name, alias)
        if last is not None and not self._exists(name, last.version):
            raise NotFound(
                f"alias {alias!r} of model {name!r} points at version {last.version}, which was deleted; "
                f"point it at a version that exists: strato models alias set {name} {alias} VERSION",
                details={"model": name, "alias": alias, "version": last.version},
            )
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(dict(model.aliases).items())) or "none"
        raise NotFound(
            f"model {name!r} has no alias {alias!r} (its aliases: {aliases})", details={"model": name, "alias": alias}
        )

    def versions(self, name: str) -> list[Any]:
        client = self.ctx.mlflow.client()
        found: list[Any] = []
        token = None
        with translated(f"model {name!r}"):
            while True:
                page = client.search_model_versions(f"name = '{name}'", max_results=PAGE, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
        return sorted(found, key=lambda v: int(v.version))

    def models(self) -> list[Any]:
        client = self.ctx.mlflow.client()
        found: list[Any] = []
        token = None
        with translated("registered models"):
            while True:
                page = client.search_registered_models(max_results=PAGE, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
        return sorted(found, key=lambda m: m.name)

    def _exists(self, name: str, version: str) -> bool:
        try:
            self.ctx.mlflow.client().get_model_version(name, version)
        except Exception as exc:
            if is_mlflow_error(exc):
                return False
            raise
        return True

    def _numbers(self, name: str) -> str:
        numbers = [v.version for v in self.versions(name)]
        return ", ".join(numbers) if numbers else "none"

    # Views --------------------------------------------------------------------------------------------
    def required_approvals(self, name: str) -> int:
        policy = self.ctx.policies.find(name)
        return policy.require.approvals if policy else 1

    def version_view(
        self,
        mv: Any,
        events: list[ApprovalEvent] | None = None,
        required: int | None = None,
        aliases: list[str] | None = None,
    ) -> dict[str, Any]:
        """``aliases``: the version's, when ``mv`` came from a search (MLflow leaves them out there)."""
        name, version = mv.name, str(mv.version)
        events = self.ctx.log.events(name, version) if events is None else events
        approval = summarize(events)
        required = self.required_approvals(name) if required is None else required
        decided = approval.decided
        return {
            "model": name,
            "version": version,
            "status": str(approval.status),
            "approvals": {"count": len(approval.approvers), "required": required, "by": approval.approvers},
            "decided": (
                {"action": decided.action, "actor": decided.actor, "reason": decided.reason, "at": decided.at}
                if decided
                else None
            ),
            "aliases": sorted(mv.aliases or []) if aliases is None else sorted(aliases),
            "run_id": mv.run_id,
            "source": mv.source,
            "description": mv.description or "",
            "tags": dict(mv.tags or {}),
            "created_at": (mv.creation_timestamp or 0) / 1000,
            "updated_at": (mv.last_updated_timestamp or 0) / 1000,
            "uri": f"models:/{name}/{version}",
        }

    def model_view(self, rm: Any, versions: list[Any] | None = None) -> dict[str, Any]:
        latest = max((int(v.version) for v in rm.latest_versions or []), default=None)
        view: dict[str, Any] = {
            "name": rm.name,
            "description": rm.description or "",
            "tags": dict(rm.tags or {}),
            "aliases": {alias: str(v) for alias, v in sorted(dict(rm.aliases or {}).items())},
            "latest_version": str(latest) if latest is not None else None,
            "created_at": (rm.creation_timestamp or 0) / 1000,
            "updated_at": (rm.last_updated_timestamp or 0) / 1000,
            "policy": rm.name if self.ctx.policies.find(rm.name) else None,
        }
        if versions is not None:
            events = self.ctx.log.by_version(rm.name)
            required = self.required_approvals(rm.name)
            by_version: dict[str, list[str]] = {}
            for alias, number in view["aliases"].items():
                by_version.setdefault(number, []).append(alias)
            view["versions"] = [
                self.version_view(v, events.get(str(v.version), []), required, by_version.get(str(v.version), []))
                for v in versions
            ]
        return view
