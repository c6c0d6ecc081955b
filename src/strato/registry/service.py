"""What the API does with the model registry: register versions (from a job or a run), read models and
versions with their approval status, aliases, tags and descriptions, approve and reject, model cards.
MLflow's registry holds models, versions, aliases and tags; Strato's database holds the approval log
(the truth of a version's status, mirrored into MLflow as a tag) and the model cards."""

from __future__ import annotations

import builtins
from typing import Any

from strato._registry import Registry
from strato.errors import InvalidArgument
from strato.registry.approvals import Action, ApprovalLog, summarize
from strato.registry.cards import CardStore, ModelCard
from strato.registry.catalog import STATUS_TAG, Catalog, RegistryContext, check_version
from strato.registry.deploy import OnApproval
from strato.registry.hooks import DEPLOY_HOOKS, DeployHook
from strato.registry.mlflow_access import Mlflow, translated
from strato.registry.policies import PolicyService
from strato.registry.register import Registrar, check_model_name, check_tags
from strato.registry.workflow import Workflow
from strato.specs.approval_policy import check_alias
from strato.store.metadata import MetadataStore
from strato.tracking.server import TrackingServer


def _alias(alias: str) -> str:
    try:
        return check_alias(alias)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


class RegistryService:
    def __init__(
        self,
        store: MetadataStore,
        tracking: TrackingServer | None,
        *,
        policies: PolicyService | None = None,
        hooks: Registry[DeployHook] = DEPLOY_HOOKS,
    ):
        self.policies = policies or PolicyService(store)
        self.log = ApprovalLog(store)
        self.ctx = RegistryContext(mlflow=Mlflow(tracking), log=self.log, policies=self.policies)
        self.catalog = Catalog(self.ctx)
        self.cards = CardStore(store)
        self.registrar = Registrar(self.ctx, store)
        self.workflow = Workflow(self.ctx, self.catalog, self.cards, OnApproval(self.log, hooks, self._set_alias))

    # Register ---------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        job: str | None = None,
        run_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        aliases: builtins.list[str] | None = None,
        actor: str = "unknown",
    ) -> dict[str, Any]:
        """A new version of model ``name`` from the Completed training job ``job`` or the run ``run_id``;
        it starts PendingManualApproval."""
        check_model_name(name)
        if (job is None) == (run_id is None):
            raise InvalidArgument("give the job (--job NAME) or the run (--run RUN_ID) the model comes from, not both")
        tags = check_tags(tags or {})
        aliases = [_alias(a) for a in aliases or []]
        record = None
        if job is not None:
            record, run_id = self.registrar.job_run(job)
        assert run_id is not None
        run = self.registrar.run(run_id.strip())
        source = self.registrar.source(run)
        mv = self.registrar.create_version(name, source, tags, description)
        self.registrar.record(mv, source, actor, record, self.log)
        for alias in aliases:
            self._set_alias(name, alias, str(mv.version), actor, "set at registration")
        return self.catalog.version_view(self.catalog.version(name, str(mv.version)))

    # Read -------------------------------------------------------------------------------------------
    def list_models(self) -> builtins.list[dict[str, Any]]:
        return [self.catalog.model_view(rm) for rm in self.catalog.models()]

    def get_model(self, name: str) -> dict[str, Any]:
        return self.catalog.model_view(self.catalog.model(name), self.catalog.versions(name))

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        """A version by number or alias, with its approval status (re-mirrored into MLflow if it drifted)."""
        mv = self.catalog.version(name, version)
        view = self.catalog.version_view(mv)
        if view["tags"].get(STATUS_TAG) != view["status"]:
            with translated(f"model {name!r} version {mv.version}"):
                self.ctx.mlflow.client().set_model_version_tag(name, str(mv.version), STATUS_TAG, view["status"])
            view["tags"][STATUS_TAG] = view["status"]
        return view

    def resolve_model(self, reference: str) -> tuple[str, str | None]:
        """A model as an endpoint names it -> (a URI naming one fixed model, its version). An alias
        (``models:/iris@champion``) resolves to the version it points at now; other URIs pass through."""
        if not reference.startswith("models:/"):
            return reference, None
        rest = reference[len("models:/") :]
        name, ref = rest.split("@", 1) if "@" in rest else rest.rsplit("/", 1) if "/" in rest else (rest, "")
        if not name or not ref:
            raise InvalidArgument(f"model {reference!r}: use models:/NAME/VERSION or models:/NAME@ALIAS")
        mv = self.catalog.version(name, ref)
        return f"models:/{name}/{mv.version}", str(mv.version)

    def record_shadow_comparison(self, model: str, compared: int, agreed: int) -> None:
        """Log how often a shadow model agreed with production on its version's run, as the metrics
        ``shadow:agreement`` and ``shadow:compared``: an approval policy gates on them like on any
        metric (``shadow:agreement >= 0.95``)."""
        pinned, version = self.resolve_model(model)
        if version is None:
            return  # not a registry version: nothing to record it on
        name = pinned[len("models:/") :].rsplit("/", 1)[0]
        mv = self.catalog.version(name, version)
        if not mv.run_id:
            return
        client = self.ctx.mlflow.client()
        client.log_metric(mv.run_id, "shadow:agreement", agreed / compared if compared else 0.0)
        client.log_metric(mv.run_id, "shadow:compared", float(compared))

    # Aliases, tags, descriptions --------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str, actor: str = "unknown") -> dict[str, Any]:
        return self._set_alias(name, _alias(alias), version, actor, "")

    def _set_alias(self, name: str, alias: str, version: str, actor: str, reason: str) -> dict[str, Any]:
        mv = self.catalog.version(name, check_version(version))
        with translated(f"model {name!r}"):
            self.ctx.mlflow.client().set_registered_model_alias(name, alias, str(mv.version))
        self.log.append(name, str(mv.version), Action.ALIAS_SET, actor, reason, {"alias": alias})
        return self.get_version(name, str(mv.version))

    def delete_alias(self, name: str, alias: str, actor: str = "unknown") -> None:
        mv = self.catalog.by_alias(name, alias)
        with translated(f"model {name!r}"):
            self.ctx.mlflow.client().delete_registered_model_alias(name, alias)
        self.log.append(name, str(mv.version), Action.ALIAS_DELETED, actor, "", {"alias": alias})

    def set_tags(self, name: str, tags: dict[str, str], version: str | None = None) -> dict[str, Any]:
        tags = check_tags(tags)
        client = self.ctx.mlflow.client()
        if version is None:
            self.catalog.model(name)
            with translated(f"model {name!r}"):
                for key, value in tags.items():
                    client.set_registered_model_tag(name, key, value)
            return self.get_model(name)
        mv = self.catalog.version(name, version)
        with translated(f"model {name!r} version {mv.version}"):
            for key, value in tags.items():
                client.set_model_version_tag(name, str(mv.version), key, value)
        return self.get_version(name, str(mv.version))

    def delete_tag(self, name: str, key: str, version: str | None = None) -> None:
        check_tags({key: ""})
        client = self.ctx.mlflow.client()
        if version is None:
            self.catalog.model(name)
            with translated(f"model {name!r}"):
                client.delete_registered_model_tag(name, key)
            return
        mv = self.catalog.version(name, version)
        with translated(f"model {name!r} version {mv.version}"):
            client.delete_model_version_tag(name, str(mv.version), key)

    def set_description(self, name: str, description: str, version: str | None = None) -> dict[str, Any]:
        client = self.ctx.mlflow.client()
        if version is None:
            self.catalog.model(name)
            with translated(f"model {name!r}"):
                client.update_registered_model(name, description=description)
            return self.get_model(name)
        mv = self.catalog.version(name, version)
        with translated(f"model {name!r} version {mv.version}"):
            client.update_model_version(name, str(mv.version), description=description)
        return self.get_version(name, str(mv.version))

    def delete_version(self, name: str, version: str, actor: str = "unknown") -> None:
        """Delete a version from MLflow (its approval history and cards stay; aliases on it go)."""
        mv = self.catalog.version(name, check_version(version))
        with translated(f"model {name!r} version {mv.version}"):
            self.ctx.mlflow.client().delete_model_version(name, str(mv.version))
        details = {"aliases": sorted(mv.aliases or [])}
        self.log.append(name, str(mv.version), Action.DELETED, actor, "", details)

    # Approvals --------------------------------------------------------------------------------------
    def approve(self, name: str, version: str, *, actor: str, reason: str) -> dict[str, Any]:
        return self.workflow.approve(name, version, actor, reason)

    def reject(self, name: str, version: str, *, actor: str, reason: str) -> dict[str, Any]:
        return self.workflow.reject(name, version, actor, reason)

    def history(self, name: str, version: str) -> builtins.list[dict[str, Any]]:
        """The version's audit log: every submission, approval, rejection, alias and deploy event."""
        return self.workflow.history(name, version)

    def status(self, name: str, version: str) -> str:
        return str(summarize(self.log.events(name, check_version(version))).status)

    # Model cards ------------------------------------------------------------------------------------
    def set_card(self, name: str, version: str, card: dict[str, Any], *, author: str) -> dict[str, Any]:
        """Store the card as the version's next revision and mirror its markdown into the version's
        description in MLflow."""
        parsed = ModelCard.parse(card)
        mv = self.catalog.version(name, version)
        number = str(mv.version)
        revision = self.cards.add(name, number, parsed, author or "unknown")
        with translated(f"model {name!r} version {number}"):
            self.ctx.mlflow.client().update_model_version(name, number, description=parsed.markdown)
        return revision.to_dict()

    def get_card(self, name: str, version: str, revision: int | None = None) -> dict[str, Any]:
        number = str(self.catalog.version(name, version).version)
        return self.cards.get(name, number, revision).to_dict()

    def card_history(self, name: str, version: str) -> builtins.list[dict[str, Any]]:
        number = str(self.catalog.version(name, version).version)
        return [revision.to_dict() for revision in self.cards.history(name, number)]
