"""The feature store's verbs beyond apply/get/list/delete: the catalog the SDK plans with,
materialization, push, revisions and training-dataset lineage. (Online reads, ``POST
/api/v1/features/online``, are served by ``server/online_features_route.py`` ahead of FastAPI.)"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from strato.server.deps import platform
from strato.server.platform import Platform
from strato.specs import KINDS

router = APIRouter(prefix="/api/v1/features", tags=["features"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterializeRequest(_Body):
    start: str | None = None
    end: str | None = None
    views: list[str] | None = None
    incremental: bool = False


class PushRequest(_Body):
    view: str
    rows: list[dict[str, Any]] = Field(min_length=1)
    to: Literal["online", "offline", "both"] = "online"


class DatasetRequest(_Body):
    name: str
    version: int
    sources: list[dict[str, Any]]


@router.get("/catalog")
def catalog(p: Platform = Depends(platform)) -> dict[str, Any]:
    """Every definition, the lake root and the online store's URL: what the SDK needs to read directly."""
    return {
        "catalog": p.features.catalog().to_json(),
        "lake_url": p.settings.resolved_lake_url,
        "online_store_url": p.features.online_url,
    }


@router.post("/materialize")
def materialize(body: MaterializeRequest, p: Platform = Depends(platform)) -> dict[str, Any]:
    results = p.features.materialize(body.start, body.end, body.views, incremental=body.incremental)
    return {"views": [r.__dict__ for r in results]}


@router.post("/push")
def push(body: PushRequest, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.features.push(body.view, body.rows, body.to)


@router.post("/datasets")
def dataset(body: DatasetRequest, p: Platform = Depends(platform)) -> dict[str, Any]:
    p.features.record_dataset(body.name, body.version, body.sources)
    return {"recorded": True, "name": body.name, "version": body.version}


@router.post("/log/flush")
def flush_log(p: Platform = Depends(platform)) -> dict[str, Any]:
    """Write the served feature vectors queued so far (skew reports read the lake table)."""
    return {"written": p.features.feature_log.flush()}


@router.get("/{kind}/{name}/revisions")
def revisions(kind: str, name: str, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.features.definitions.revisions(KINDS.get(kind).KIND, name)
