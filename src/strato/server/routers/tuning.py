"""Verbs specific to tuning jobs: trials, stop, resume, wait, events (apply/get/list/delete are generic)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from strato.server.deps import platform
from strato.server.platform import Platform
from strato.tuning.states import TuningState

router = APIRouter(prefix="/api/v1/tuningjobs", tags=["tuning"])


@router.get("/{name}/trials")
def trials(name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    """One row per trial: number, job, state, hyperparameters, objective, last step and value."""
    return p.tuning.trials(name)


@router.post("/{name}/stop")
def stop(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.tuning.to_api(p.tuning.stop(name))


@router.post("/{name}/resume")
def resume(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.tuning.to_api(p.tuning.resume(name))


@router.get("/{name}/events")
def events(name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.tuning.events(name)


@router.get("/{name}/wait")
async def wait(
    name: str, request: Request, timeout: float = Query(30.0, ge=0, le=60), p: Platform = Depends(platform)
) -> dict[str, Any]:
    """Answer as soon as the tuning job is Completed, Failed or Stopped, or after ``timeout`` seconds
    with its current state (long poll: call again until it is done)."""
    record = await request.app.state.waiters.until(
        lambda: p.tuning.get(name), lambda r: TuningState(r.state).terminal, timeout
    )
    return p.tuning.to_api(record)
