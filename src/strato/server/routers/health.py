"""Liveness and Prometheus metrics (no token needed: they reveal no resource data)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from strato._version import __version__

router = APIRouter()


@router.get("/healthz", tags=["health"])
def healthz(request: Request) -> dict[str, object]:
    platform = request.app.state.platform
    return {
        "status": "ok",
        "version": __version__,
        "home": str(platform.settings.home),
        "compute": platform.backend.name,
        "reconcile_passes": platform.loop.passes,
        "tracking": platform.tracking.status() if platform.tracking else {"state": "off"},
    }


@router.get("/metrics", tags=["health"])
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
