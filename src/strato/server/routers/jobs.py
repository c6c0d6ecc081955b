"""Verbs specific to training jobs: stop, logs, events, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from strato.jobs.states import JobState
from strato.server.deps import platform
from strato.server.platform import Platform

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.post("/{name}/stop")
def stop(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.jobs.to_api(p.jobs.stop(name))


@router.post("/{name}/interrupt")
def interrupt(name: str, notice: float | None = Query(None, ge=0), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Interrupt a running job as a spot reclaim would: notice, SIGTERM, kill; it then recovers."""
    return p.jobs.to_api(p.jobs.interrupt(name, notice))


@router.get("/{name}/wait")
async def wait(
    name: str, request: Request, timeout: float = Query(30.0, ge=0, le=60), p: Platform = Depends(platform)
) -> dict[str, Any]:
    """Answer as soon as the job is Completed, Failed or Stopped, or after ``timeout`` seconds with
    its current state (long poll: call again until it is done)."""
    record = await request.app.state.waiters.until(
        lambda: p.jobs.get(name), lambda r: JobState(r.state).terminal, timeout
    )
    if JobState(record.state).terminal:
        await asyncio.to_thread(p.cost.settle)  # the finished job's cost is in the answer, not a pass later
    return p.cost.annotate([p.jobs.to_api(record)])[0]


@router.get("/{name}/logs")
def logs(
    name: str,
    offset: int = Query(0, ge=0),
    attempt: int | None = Query(None, ge=1),
    worker: int = Query(0, ge=0, description="rank of the worker of a distributed job"),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.jobs.logs(name, offset, attempt, worker)


@router.get("/{name}/events")
def events(name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.jobs.events(name)


@router.get("/{name}/metrics")
def metrics(
    name: str, name_filter: list[str] | None = Query(None, alias="name"), p: Platform = Depends(platform)
) -> list[dict[str, Any]]:
    return p.jobs.metrics(name, name_filter)
