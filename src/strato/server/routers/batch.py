"""Verbs specific to batch transform jobs: stop (apply/get/list/delete are generic)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from strato.server.deps import platform
from strato.server.platform import Platform

router = APIRouter(prefix="/api/v1/batchtransformjobs", tags=["batch"])


@router.post("/{name}/stop")
def stop(name: str, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Stop the workers; what they wrote stays (a new job over the same output resumes after it)."""
    return p.batch.to_api(p.batch.stop(name))
