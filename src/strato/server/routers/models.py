"""The model registry: register versions, read models and versions (by number or alias), aliases, tags,
descriptions, approvals with their audit log, model cards. (``ApprovalPolicy`` is a resource: the
generic apply/get/delete verbs serve it.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from strato.server.deps import platform
from strato.server.platform import Platform
from strato.specs.base import StrictModel

router = APIRouter(prefix="/api/v1/models", tags=["models"])


class RegisterBody(StrictModel):
    job: str | None = None
    run_id: str | None = None
    description: str | None = None
    tags: dict[str, str] = {}
    aliases: list[str] = []
    actor: str = "unknown"


class UpdateBody(StrictModel):
    description: str | None = None
    tags: dict[str, str] = {}


class AliasBody(StrictModel):
    version: str
    actor: str = "unknown"


class DecisionBody(StrictModel):
    actor: str
    reason: str


class CardBody(StrictModel):
    card: dict[str, Any]
    author: str = "unknown"


# Models -------------------------------------------------------------------------------------------------
@router.get("")
def list_models(p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    """Every registered model with its aliases and latest version."""
    return p.registry.list_models()


@router.get("/{name}")
def get_model(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    """A registered model with every version, its approval status and aliases."""
    return p.registry.get_model(name)


@router.patch("/{name}")
def update_model(name: str, body: UpdateBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    if body.tags:
        p.registry.set_tags(name, body.tags)
    if body.description is not None:
        p.registry.set_description(name, body.description)
    return p.registry.get_model(name)


@router.delete("/{name}/tags/{key}", status_code=204)
def delete_model_tag(name: str, key: str, p: Platform = Depends(platform)) -> Response:
    p.registry.delete_tag(name, key)
    return Response(status_code=204)


# Versions -----------------------------------------------------------------------------------------------
@router.post("/{name}/versions", status_code=201)
def register(name: str, body: RegisterBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Register a new version from a Completed training job (``job``) or an MLflow run (``run_id``)."""
    return p.registry.register(
        name,
        job=body.job,
        run_id=body.run_id,
        description=body.description,
        tags=body.tags,
        aliases=body.aliases,
        actor=body.actor,
    )


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    """A version by number or alias (``champion``)."""
    return p.registry.get_version(name, version)


@router.patch("/{name}/versions/{version}")
def update_version(name: str, version: str, body: UpdateBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    if body.tags:
        p.registry.set_tags(name, body.tags, version)
    if body.description is not None:
        p.registry.set_description(name, body.description, version)
    return p.registry.get_version(name, version)


@router.delete("/{name}/versions/{version}", status_code=204)
def delete_version(name: str, version: str, actor: str = Query("unknown"), p: Platform = Depends(platform)) -> Response:
    p.registry.delete_version(name, version, actor)
    return Response(status_code=204)


@router.delete("/{name}/versions/{version}/tags/{key}", status_code=204)
def delete_version_tag(name: str, version: str, key: str, p: Platform = Depends(platform)) -> Response:
    p.registry.delete_tag(name, key, version)
    return Response(status_code=204)


# Aliases ------------------------------------------------------------------------------------------------
@router.put("/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Point ``alias`` at a version (moving it from the version it pointed at)."""
    return p.registry.set_alias(name, alias, body.version, body.actor)


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, actor: str = Query("unknown"), p: Platform = Depends(platform)) -> Response:
    p.registry.delete_alias(name, alias, actor)
    return Response(status_code=204)


# Approvals ----------------------------------------------------------------------------------------------
@router.post("/{name}/versions/{version}/approve")
def approve(name: str, version: str, body: DecisionBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Approve a version: its model's ApprovalPolicy is checked first; the result says how many
    approvals it has and what ``on_approval`` did."""
    return p.registry.approve(name, version, actor=body.actor, reason=body.reason)


@router.post("/{name}/versions/{version}/reject")
def reject(name: str, version: str, body: DecisionBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.registry.reject(name, version, actor=body.actor, reason=body.reason)


@router.get("/{name}/versions/{version}/history")
def history(name: str, version: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    """The version's audit log, oldest first."""
    return p.registry.history(name, version)


# Model cards --------------------------------------------------------------------------------------------
@router.put("/{name}/versions/{version}/card", status_code=201)
def set_card(name: str, version: str, body: CardBody, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Store a new revision of the version's model card."""
    return p.registry.set_card(name, version, body.card, author=body.author)


@router.get("/{name}/versions/{version}/card")
def get_card(
    name: str, version: str, revision: int | None = Query(None, ge=1), p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.registry.get_card(name, version, revision)


@router.get("/{name}/versions/{version}/card/history")
def card_history(name: str, version: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.registry.card_history(name, version)
