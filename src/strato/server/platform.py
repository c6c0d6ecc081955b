"""Wires one workspace together from its settings: stores, compute backends, services and the
reconcile loop. The API, the daemon and tests all build the platform here, one way."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from strato.batch.reconciler import BatchContext, BatchTransformReconciler
from strato.batch.service import BatchTransformService
from strato.compute import create_backend
from strato.compute.base import ComputeBackend
from strato.config import Settings
from strato.controlplane import ReconcileLoop, Reconciler
from strato.cost.service import CostService
from strato.errors import InvalidArgument
from strato.features.service import DefinitionKindService, FeatureStoreService, MaterializationReconciler
from strato.jobs.reconciler import JobContext, TrainingJobReconciler
from strato.jobs.service import JobService
from strato.lake.tables import LakeTables
from strato.pipelines.reconciler import PipelineContext, PipelineRunReconciler
from strato.pipelines.schedule import ScheduleReconciler, ScheduleService
from strato.pipelines.service import PipelineRunService, PipelineService
from strato.registry.service import RegistryService
from strato.server.auth import ensure_token
from strato.serving.reconciler import EndpointContext, EndpointReconciler, passed_env
from strato.serving.routes import RouteTable
from strato.serving.service import EndpointService
from strato.specs import KINDS, TrainingJob, TuningJob
from strato.specs.approval_policy import ApprovalPolicy
from strato.specs.batch_transform import BatchTransformJob
from strato.specs.budget import Budget
from strato.specs.endpoint import Endpoint
from strato.specs.features import DEFINITION_KINDS
from strato.specs.pipeline import Pipeline
from strato.specs.pipeline_run import PipelineRun
from strato.specs.pipeline_schedule import PipelineSchedule
from strato.store.artifacts import ArtifactStore, open_artifact_store
from strato.store.metadata import MetadataStore, ResourceRecord
from strato.store.secrets import SecretBox
from strato.tracking.server import TrackingServer
from strato.tracking.tracker import Tracker
from strato.tuning.reconciler import TuningContext, TuningJobReconciler
from strato.tuning.service import TuningService
from strato.tuning.study import Studies


def _local_root(settings: Settings) -> Path:
    """Where local outputs go: the artifact store when it is a local directory, else the home."""
    url = settings.resolved_artifact_url
    return Path(url.removeprefix("file://")) if "://" not in url.removeprefix("file://") else settings.home


def _timer(delay: float, callback: Any) -> None:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()


class ResourceService(Protocol):
    """What the generic API verbs need from the service of each kind."""

    def apply(self, spec: Any) -> tuple[ResourceRecord, bool]: ...
    def get(self, name: str) -> ResourceRecord: ...
    def list(self) -> list[ResourceRecord]: ...
    def delete(self, name: str) -> None: ...
    def to_api(self, record: ResourceRecord) -> dict[str, Any]: ...


@dataclass
class Platform:
    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    backend: ComputeBackend
    jobs: JobService
    tuning: TuningService
    studies: Studies  # Optuna's storage engine, closed with the platform
    loop: ReconcileLoop
    services: dict[str, ResourceService]
    tracking: TrackingServer | None  # the managed MLflow server; None with ``tracking: false``
    tracker: Tracker | None  # every job's MLflow run
    registry: RegistryService  # the model registry (answers a clear error while tracking is off)
    endpoints: EndpointService
    batch: BatchTransformService
    routes: RouteTable  # the endpoint router's table, written by the endpoint reconciler
    features: FeatureStoreService
    cost: CostService
    pipelines: PipelineService
    pipeline_runs: PipelineRunService
    schedules: ScheduleService

    @classmethod
    def build(cls, settings: Settings, backend: ComputeBackend | None = None) -> Platform:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = MetadataStore(settings.resolved_database_url)
        tracking = TrackingServer(settings) if settings.tracking else None
        tracker = None
        if tracking is not None:
            token = ensure_token(settings.token_path)
            tracker = Tracker(store, tracking, public_url=settings.resolved_url, token=token)
        artifacts = open_artifact_store(settings.resolved_artifact_url, settings.artifact_options)
        backend = backend or create_backend(settings)
        lake = LakeTables(settings.resolved_lake_url)
        ctx = JobContext(
            store=store,
            artifacts=artifacts,
            backends={backend.name: backend},
            default_backend=backend.name,
            secrets=SecretBox(settings.home / "secret.key"),
            artifact_url=settings.resolved_artifact_url,
            artifact_options=settings.artifact_options,
            stop_grace=settings.stop_grace,
            log_max_bytes=settings.log_max_bytes,
            tracker=tracker,
            lake=lake,
        )

        def wake() -> None:
            loop.wake()

        jobs = JobService(ctx, wake=wake)
        studies = Studies(store.url)
        tuning_ctx = TuningContext(
            store=store, jobs=jobs, secrets=ctx.secrets, studies=studies, wake=wake, tracker=tracker
        )
        registry = RegistryService(store, tracking)
        routes = RouteTable()
        routes.on_demand = lambda _name: wake()
        token = ensure_token(settings.token_path)
        endpoint_ctx = EndpointContext(
            store=store,
            backend=backend,
            routes=routes,
            resolve_model=registry.resolve_model,
            model_env=lambda: (
                {"MLFLOW_TRACKING_URI": f"{settings.resolved_url}/mlflow"},
                {"MLFLOW_TRACKING_TOKEN": token},
            ),
            cache_dir=settings.home / "model-cache",
            public_url=settings.resolved_url,
            lake_root=settings.resolved_lake_url,
            report_shadow=registry.record_shadow_comparison if tracking is not None else lambda *_: None,
            wake_soon=lambda delay: _timer(delay, wake),
        )
        batch_ctx = BatchContext(
            store=store,
            backend=backend,
            resolve_model=registry.resolve_model,
            model_env=endpoint_ctx.model_env,
            cache_dir=endpoint_ctx.cache_dir,
            default_output=lambda name: str(_local_root(settings) / "batch" / name),
            passed_env=passed_env,
            lake=lake,
        )
        features = FeatureStoreService(
            store,
            lake,
            settings.resolved_online_store_url,
        )
        cost = CostService(
            store,
            target=settings.cost_target,
            catalog_dir=settings.cost_catalog_dir,
            last_request=lambda: dict(routes.last_request),
        )
        pipeline_runs = PipelineRunService(store, wake=wake)
        schedules = ScheduleService(store, pipeline_runs)
        endpoints = EndpointService(store, backend, wake=wake)
        batch = BatchTransformService(store, backend, wake=wake, lake=lake)
        reconcilers: list[Reconciler] = [
            TrainingJobReconciler(ctx),
            TuningJobReconciler(tuning_ctx),
            EndpointReconciler(endpoint_ctx),
            BatchTransformReconciler(batch_ctx),
            MaterializationReconciler(features),
            PipelineRunReconciler(
                PipelineContext(
                    store=store,
                    jobs=jobs,
                    artifacts=artifacts,
                    lake=lake,
                    registry=registry,
                    endpoints=endpoints,
                    batch=batch,
                )
            ),
            ScheduleReconciler(schedules),
        ]
        loop = ReconcileLoop(store, reconcilers, tick_interval=settings.tick_interval)
        backend.add_listener(loop.wake)
        tuning = TuningService(store, jobs, ctx.secrets, wake=wake)
        pipelines = PipelineService(store)
        return cls(
            settings=settings,
            store=store,
            artifacts=artifacts,
            backend=backend,
            jobs=jobs,
            tuning=tuning,
            studies=studies,
            loop=loop,
            services={
                TrainingJob.KIND: jobs,
                TuningJob.KIND: tuning,
                ApprovalPolicy.KIND: registry.policies,
                Endpoint.KIND: endpoints,
                BatchTransformJob.KIND: batch,
                **{kind.KIND: DefinitionKindService(kind.KIND, features) for kind in DEFINITION_KINDS},
                Budget.KIND: cost.budgets,
                Pipeline.KIND: pipelines,
                PipelineRun.KIND: pipeline_runs,
                PipelineSchedule.KIND: schedules,
            },
            tracking=tracking,
            tracker=tracker,
            registry=registry,
            endpoints=endpoints,
            batch=batch,
            routes=routes,
            features=features,
            cost=cost,
            pipelines=pipelines,
            pipeline_runs=pipeline_runs,
            schedules=schedules,
        )

    def service(self, kind: str) -> ResourceService:
        """The service of a kind given by any of its names (``jobs``, ``job``, ``TrainingJob``)."""
        name = KINDS.get(kind).KIND
        if name not in self.services:
            raise InvalidArgument(f"kind {name!r} has no API on this server")
        return self.services[name]

    def start(self) -> None:
        if self.tracking is not None:
            self.tracking.start()
        if self.tracker is not None:
            self.tracker.start()
        self.loop.start()
        self.cost.start()

    def close(self) -> None:
        self.cost.close()
        self.loop.stop()
        self.routes.close()  # flushes data capture
        self.features.close()
        if self.tracker is not None:
            self.tracker.stop()
        if self.tracking is not None:
            self.tracking.stop()
        self.backend.close()  # running tasks keep running; the next control plane re-adopts them
        self.studies.close()
        self.store.close()
