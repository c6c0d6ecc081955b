"""The cost engine over REST: quotes for a resource request or a spec, the catalog (search, update),
the ledger's records and the report."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from fastapi import APIRouter, Body, Depends, Query

from strato.cost.quote import QuoteRequest
from strato.errors import InvalidArgument
from strato.server.deps import platform
from strato.server.platform import Platform
from strato.specs import parse_spec
from strato.specs.pipeline import Pipeline

router = APIRouter(prefix="/api/v1/cost", tags=["cost"])
REQUEST_FIELDS = {f.name for f in fields(QuoteRequest)}


def _request(body: dict[str, Any]) -> QuoteRequest:
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown quote field {unknown[0]!r} (fields: {', '.join(sorted(REQUEST_FIELDS))})")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}
    return QuoteRequest(**values)


@router.post("/quote")
def quote(body: dict[str, Any] = Body(...), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Options for ``{"request": {cpus, memory_gib, gpus, gpu_type, nodes, hours, ...}}`` or for
    ``{"spec": <a job, tuning job, endpoint or batch transform>, "request": {overrides}}``, cheapest first."""
    overrides = dict(body.get("request") or {})
    spec = parse_spec(body["spec"], where="spec") if body.get("spec") is not None else None
    if isinstance(spec, Pipeline):  # one plan per step that runs a job, and their total
        plan = p.cost.quote_pipeline(spec, **overrides)
        for step in plan["steps"]:
            step["option"] = {**asdict(step["option"]), "offer": asdict(step["option"].offer)}
        return {**plan, "catalog_warning": p.cost.stale_warning()}
    if spec is not None:
        request = p.cost.request_for(spec, **overrides)
        if overrides:
            request = _request({**asdict(request), **overrides})
    else:
        request = _request(overrides)
    options = p.cost.quote(request, limit=int(body.get("limit") or 20))
    return {
        "request": asdict(request),
        "options": [{**asdict(o), "offer": asdict(o.offer)} for o in options],
        "catalog_warning": p.cost.stale_warning(),
    }


@router.get("/catalog")
def search(
    cloud: str | None = None,
    region: str | None = None,
    gpu: str | None = None,
    service: str | None = None,
    min_vcpus: float | None = Query(None, ge=0),
    min_memory_gib: float | None = Query(None, ge=0),
    limit: int = Query(50, ge=1, le=100_000),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    catalog = p.cost.catalog()
    offers = catalog.search(
        cloud=cloud, region=region, gpu=gpu, service=service, min_vcpus=min_vcpus, min_memory_gib=min_memory_gib
    )
    offers = sorted(offers, key=lambda o: (o.on_demand is None, o.on_demand or 0.0))
    return {
        "count": len(offers),
        "offers": [asdict(o) for o in offers[:limit]],
        "catalog_warning": p.cost.stale_warning(),
    }


@router.post("/catalog/update")
def update(body: dict[str, Any] = Body(default={}), p: Platform = Depends(platform)) -> dict[str, Any]:
    from strato.cost.refresh import update_catalog

    report = update_catalog(p.settings.cost_catalog_dir, **body)
    p.cost.reload()
    return {**asdict(report), "ok": report.ok}


@router.get("/records")
def records(since_days: float = Query(30.0, gt=0), p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    p.cost.settle()
    since = p.cost.clock() - since_days * 86400
    return [r.__dict__ for r in p.cost.records.records(since=since)]


@router.get("/report")
def report(since_days: float = Query(30.0, gt=0), p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.cost.report(since_days)
