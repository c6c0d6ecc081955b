"""Lineage: what a dataset, job, run, model version or endpoint came from, and what came from it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from strato.lineage.query import LineageQueries
from strato.server.deps import platform
from strato.server.platform import Platform

router = APIRouter(prefix="/api/v1/lineage", tags=["lineage"])


@router.get("/{kind}/{name:path}")
def get_lineage(
    kind: str,
    name: str,
    direction: Literal["upstream", "downstream", "both"] = Query(
        "both", description="upstream: what it came from; downstream: what came from it; both."
    ),
    depth: int | None = Query(None, ge=0, description="Hops from the node (0: the node alone); all when absent."),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """The lineage graph around one node, found by ``kind`` (dataset, code, job, tuning_job, run,
    model_version, endpoint ...) and its name or key (the newest node when a name repeats; ``notes``
    says so). Names may hold ``/`` (``iris/3``, ``s3://bucket/train``): send them percent-encoded."""
    return LineageQueries(p.store).graph(kind, name, direction, depth).to_dict()
