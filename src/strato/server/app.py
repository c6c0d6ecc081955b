"""The control plane's FastAPI app, built by ``create_app(settings)``. OpenAPI at ``/docs``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response

from strato._version import __version__
from strato.config import Settings
from strato.server.auth import ensure_token, is_loopback
from strato.server.deps import authenticate
from strato.server.endpoint_router import EndpointRouter
from strato.server.errors import install_error_handlers
from strato.server.mlflow_proxy import MlflowProxy
from strato.server.observability import Metrics
from strato.server.online_features_route import OnlineFeaturesRoute
from strato.server.platform import Platform
from strato.server.routers import (
    artifacts,
    batch,
    cost,
    features,
    health,
    jobs,
    lineage,
    models,
    pipelines,
    resources,
    tuning,
)
from strato.server.waiters import ChangeWaiters


def create_app(settings: Settings, *, platform: Platform | None = None, run_loop: bool = True) -> FastAPI:
    """``platform`` may be given (tests pass one with a fake backend); ``run_loop=False`` leaves the
    reconcile loop to the caller."""
    platform = platform or Platform.build(settings)
    metrics = Metrics(platform.store, platform.routes)
    platform.loop.on_pass = metrics.observe_pass

    waiters = ChangeWaiters()
    platform.store.add_listener(waiters.notify)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        waiters.attach(asyncio.get_running_loop())
        if run_loop:
            platform.start()
        try:
            yield
        finally:
            platform.close()

    app = FastAPI(
        title="Strato control plane",
        version=__version__,
        lifespan=lifespan,
        description="Training jobs and the resources around them. Every /api route takes a "
        "bearer token when the server listens beyond loopback.",
    )
    app.state.platform = platform
    app.state.metrics = metrics
    app.state.waiters = waiters
    app.state.token = ensure_token(settings.token_path)
    app.state.token_required = not is_loopback(settings.host)
    install_error_handlers(app)

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.latency.labels(template).observe(time.perf_counter() - started)
        return response

    app.include_router(health.router)
    protected = [Depends(authenticate)]
    app.include_router(jobs.router, dependencies=protected)
    app.include_router(tuning.router, dependencies=protected)
    app.include_router(batch.router, dependencies=protected)
    app.include_router(artifacts.router, dependencies=protected)
    app.include_router(lineage.router, dependencies=protected)
    app.include_router(features.router, dependencies=protected)
    app.include_router(cost.router, dependencies=protected)
    app.include_router(pipelines.router, dependencies=protected)
    app.include_router(models.router, dependencies=protected)  # before resources: /api/v1/{kind} would take it
    app.include_router(resources.router, dependencies=protected)
    # Inference requests skip the API's middleware and routing too (their cost is paid per prediction).
    app.add_middleware(
        EndpointRouter,
        routes=platform.routes,
        token=app.state.token,
        token_required=app.state.token_required,
        features=platform.features,
    )
    app.add_middleware(
        OnlineFeaturesRoute,
        features=platform.features,
        token=app.state.token,
        token_required=app.state.token_required,
        token_path=settings.token_path,
    )
    # Added last, so it is the outermost layer: /mlflow requests skip the API's middleware and routing.
    app.add_middleware(
        MlflowProxy,
        tracking=platform.tracking,
        token=app.state.token,
        token_required=app.state.token_required,
        token_hint=str(settings.token_path),
    )
    return app
