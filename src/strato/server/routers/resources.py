"""Generic verbs over every kind: apply, get, list, delete (kubectl-style)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from strato.server.deps import platform
from strato.server.platform import Platform
from strato.specs import KINDS, parse_spec

router = APIRouter(prefix="/api/v1", tags=["resources"])


@router.post("/apply")
def apply(response: Response, body: dict[str, Any] = Body(...), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Create a resource from its spec (idempotent: the same spec again changes nothing)."""
    spec = parse_spec(body, where="request")
    service = p.service(spec.KIND)
    p.cost.budgets.admit(spec)  # a hard budget refuses, with the numbers, a run that would exceed it
    record, created = service.apply(spec)
    response.status_code = 201 if created else 200
    return {"created": created, "resource": p.cost.annotate([service.to_api(record)])[0]}


@router.get("/{kind}")
def list_resources(kind: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    service = p.service(kind)
    return p.cost.annotate([service.to_api(r) for r in service.list()])


@router.get("/{kind}/{name}")
def get_resource(kind: str, name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    service = p.service(kind)
    return p.cost.annotate([service.to_api(service.get(name))])[0]


@router.delete("/{kind}/{name}", status_code=202)
def delete_resource(kind: str, name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    p.service(kind).delete(name)
    return {"deleted": True, "kind": KINDS.get(kind).KIND, "name": name}
