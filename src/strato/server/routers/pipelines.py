"""Verbs specific to pipelines and their runs: stop a run, a pipeline's revisions (apply/get/list/delete
are generic)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from strato.server.deps import platform
from strato.server.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["pipelines"])


@router.post("/pipelineruns/{name}/stop")
def stop(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Stop the run's running steps; the steps not started are skipped."""
    return p.pipeline_runs.to_api(p.pipeline_runs.stop(name))


@router.get("/pipelines/{name}/revisions")
def revisions(name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    p.pipelines.get(name)
    return p.store.revisions("Pipeline", name)


@router.post("/pipelineschedules/{name}/pause")
def pause(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.schedules.to_api(p.schedules.set_paused(name, True))


@router.post("/pipelineschedules/{name}/resume")
def resume_schedule(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Resume a paused schedule: it fires from now on (the times missed while paused are not run)."""
    return p.schedules.to_api(p.schedules.set_paused(name, False))
