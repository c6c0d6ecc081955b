"""The ``Endpoint`` resource: SageMaker's real-time and serverless endpoints (production variants,
shadow tests), Vertex AI's endpoint traffic split and Azure ML's managed online endpoints, in one spec.

kind: Endpoint
name: iris
variants:
  - name: blue
    model: models:/iris@champion      # a registry version or alias (followed when it moves),
    weight: 90                        # a runs:/ URI or a local MLflow model directory
    replicas: {min: 1, max: 4}        # min: 0 = serverless (scale to zero when idle)
    resources: {cpus: 1, memory: 1Gi}
  - {name: green, model: "models:/iris/4", weight: 10}
shadow: {model: "models:/iris/5", sample_percent: 20}   # gets copies, never answers
batching: {enabled: true, max_batch_size: 32, max_wait: 10ms}
autoscaling: {target_in_flight: 4, upscale_delay: 0s, downscale_delay: 60s, idle_timeout: 5m}
data_capture: {enabled: true, sample_percent: 10}
features: {service: iris_model, log: true}   # requests send entity keys; the router adds online features
limits: {timeout: 60s, max_payload: 6Mi, max_in_flight: 64}
rollout: {strategy: canary, canary_percent: 10, interval: 2m, max_error_rate: 0.02, max_p99: 200ms}
warm_pool: {keep_alive: 10m}          # the default; false starts every replica cold
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from strato.specs.base import Delay, Duration, Memory, Resources, ResourceSpec, StrictModel, check_name
from strato.specs.training_job import WarmPool

MODEL_SCHEMES = ("models:/", "runs:/", "file://", "s3://", "/", "./", "../")


class Replicas(StrictModel):
    """How many copies of a variant run: ``min: 0`` scales to zero after ``autoscaling.idle_timeout``."""

    min: int = Field(1, ge=0, le=256)
    max: int | None = Field(None, ge=1, le=256, description="default: min (or 1 when min is 0)")

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.max is None:
            self.max = max(1, self.min)
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is smaller than min ({self.min})")
        return self


class Variant(StrictModel):
    """One model behind the endpoint, with its share of the traffic."""

    name: str = "default"
    model: str = Field(min_length=1, description="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ or a path")
    weight: float = Field(100.0, ge=0)
    replicas: Replicas = Field(default_factory=Replicas)
    resources: Resources = Field(default_factory=Resources, description="per replica")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.startswith(MODEL_SCHEMES) and "://" not in value:
            return value  # a relative directory, resolved against the spec file at apply
        if value.startswith("models:/") and len(value.split("/")) < 2:
            raise ValueError(f"model {value!r}: use models:/NAME/VERSION or models:/NAME@ALIAS")
        return value


class Shadow(StrictModel):
    """A model that receives a copy of sampled requests; its answers are compared, never returned."""

    model: str = Field(min_length=1)
    sample_percent: float = Field(100.0, gt=0, le=100)
    replicas: Replicas = Field(default_factory=Replicas)
    resources: Resources = Field(default_factory=Resources)


class Batching(StrictModel):
    """Adaptive batching: requests that arrive together go to the model as one call."""

    enabled: bool = False
    max_batch_size: int = Field(32, ge=1, le=4096, description="rows per model call")
    max_wait: Duration = Field(0.01, le=1.0, description="the most a request waits for others")


class Autoscaling(StrictModel):
    """The policy's knobs (``serving/autoscaling.py``); replicas' min and max are per variant."""

    target_in_flight: float = Field(4.0, gt=0, description="concurrent requests per replica")
    upscale_delay: Delay = Field(0.0, description="how long a need for more replicas must last")
    downscale_delay: Delay = Field(60.0, description="how long a need for fewer replicas must last")
    smoothing: float = Field(1.0, gt=0, le=1)
    idle_timeout: Duration = Field(300.0, description="min: 0 only: idle time before scaling to zero")


class DataCapture(StrictModel):
    """A sample of requests and responses, written in batches to a lake table off the request path."""

    enabled: bool = False
    sample_percent: float = Field(100.0, gt=0, le=100)
    destination: str | None = Field(None, description="lake table; default endpoint-<name>-capture")


class FeatureLookup(StrictModel):
    """Databricks' automatic feature lookup: requests carry entity keys (and on-demand request fields); the
    router adds the feature service's online values and sends the model those features, in order."""

    service: str = Field(min_length=1, description="a FeatureService")
    log: bool = Field(True, description="log served feature vectors (for `strato features skew`)")


class Rollout(StrictModel):
    """How a variant moves to a new model or settings (``serving/rollout.py``)."""

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    canary_percent: float = Field(10.0, gt=0, lt=100)
    step_percent: float = Field(25.0, gt=0, le=100)
    interval: Duration = Field(60.0, description="how long each stage bakes")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="of the new revision's requests; above: roll back")
    max_p99: Duration | None = Field(None, description="the new revision's p99 latency; above: roll back")
    min_requests: int = Field(20, ge=1, description="answers needed before judging")


class Limits(StrictModel):
    timeout: Duration = Field(60.0, description="per request, at the router")
    max_payload: Memory = Field(6 * 1024**2, description="request body; larger gets 413 (SageMaker: 6 MB)")
    max_in_flight: int = Field(64, ge=1, le=10_000, description="per replica; beyond it the router answers 429")


class Endpoint(ResourceSpec):
    KIND: ClassVar[str] = "Endpoint"
    PLURAL: ClassVar[str] = "endpoints"

    kind: str = "Endpoint"
    variants: list[Variant] = Field(min_length=1, max_length=10)
    shadow: Shadow | None = None
    batching: Batching = Field(default_factory=Batching)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    data_capture: DataCapture = Field(default_factory=DataCapture)
    features: FeatureLookup | None = None
    limits: Limits = Field(default_factory=Limits)
    rollout: Rollout = Field(default_factory=Rollout)
    compute: str | None = Field(None, description="compute backend; default the workspace's")
    warm_pool: WarmPool | None = Field(
        default_factory=lambda: WarmPool(keep_alive=600.0),
        description="start replicas forked from a process with the model's libraries imported; false: cold",
    )

    @field_validator("warm_pool", mode="before")
    @classmethod
    def _warm_pool_flag(cls, value: Any) -> Any:
        if value is True:
            return {"keep_alive": 600.0}
        return None if value is False else value

    @model_validator(mode="after")
    def _variants(self) -> Endpoint:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique: {', '.join(duplicates)} appears more than once")
        if "shadow" in names:
            raise ValueError("'shadow' is the shadow model's name: give the variant another name")
        if sum(v.weight for v in self.variants) <= 0:
            raise ValueError("at least one variant needs a weight above 0 to take traffic")
        return self

    def weights(self) -> dict[str, float]:
        """Each variant's share of traffic, summing to 1."""
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}
