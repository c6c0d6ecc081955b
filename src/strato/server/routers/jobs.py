"""Verbs specific to training jobs: stop, logs, events, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from strato.server.deps import platform
from strato.server.platform import Platform

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.post("/{name}/stop")
def stop(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.jobs.to_api(p.jobs.stop(name))


@router.get("/{name}/logs")
def logs(
    name: str, offset: int = Query(0, ge=0), attempt: int | None = Query(None, ge=1), p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.jobs.logs(name, offset, attempt)


@router.get("/{name}/events")
def events(name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.jobs.events(name)


@router.get("/{name}/metrics")
def metrics(
    name: str, name_filter: list[str] | None = Query(None, alias="name"), p: Platform = Depends(platform)
) -> list[dict[str, Any]]:
    return p.jobs.metrics(name, name_filter)
