"""Generic verbs over every kind: apply, get, list, delete (kubectl-style)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from strato.errors import InvalidArgument
from strato.server.deps import platform
from strato.server.platform import Platform
from strato.specs import KINDS, TrainingJob, parse_spec

router = APIRouter(prefix="/api/v1", tags=["resources"])


def _kind(kind: str) -> str:
    cls = KINDS.get(kind)
    if cls is not TrainingJob:
        raise InvalidArgument(f"kind {kind!r} has no API yet")
    return cls.KIND


@router.post("/apply")
def apply(response: Response, body: dict[str, Any] = Body(...), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Create a resource from its spec (idempotent: the same spec again changes nothing)."""
    spec = parse_spec(body, where="request")
    assert isinstance(spec, TrainingJob)
    record, created = p.jobs.apply(spec)
    response.status_code = 201 if created else 200
    return {"created": created, "resource": p.jobs.to_api(record)}


@router.get("/{kind}")
def list_resources(kind: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    _kind(kind)
    return [p.jobs.to_api(r) for r in p.jobs.list()]


@router.get("/{kind}/{name}")
def get_resource(kind: str, name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    _kind(kind)
    return p.jobs.to_api(p.jobs.get(name))


@router.delete("/{kind}/{name}", status_code=202)
def delete_resource(kind: str, name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    _kind(kind)
    p.jobs.delete(name)
    return {"deleted": True, "kind": TrainingJob.KIND, "name": name}
