"""The ``TrainingJob`` resource: what SageMaker's CreateTrainingJob, Vertex's CustomJob and Azure ML's
command job describe, in one spec.

A distributed job sets ``instance_count: N`` (SageMaker's InstanceCount, Vertex's replica count): N
workers, each with ``resources``, started together or not at all. ``distribution`` says what they are
told: ``none`` gives each its host and rank (``SM_HOSTS``, ``SM_CURRENT_HOST``, ``STRATO_RANK``,
Vertex's ``CLUSTER_SPEC``/``TF_CONFIG``) as SageMaker does without a framework launcher; ``torch`` adds
the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` ...), so
``torch.distributed.init_process_group()`` works unchanged.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from strato.specs.base import Duration, Resources, ResourceSpec, StrictModel
from strato.specs.spot import SpotPolicy

CHANNEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Exit codes that mean "the machine failed, not the code" by default: killed by SIGKILL (OOM killer)
# or by SIGTERM from outside, as SageMaker retries InternalServerError but not AlgorithmError.
DEFAULT_RETRY_EXIT_CODES = [137, 143]


class MetricDefinition(StrictModel):
    """A metric captured from the log, as SageMaker's MetricDefinitions: the first group is the value."""

    name: str = Field(min_length=1, max_length=255)
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        if pattern.groups < 1:
            raise ValueError(f"regex {value!r} needs one capturing group around the value, like 'loss=([0-9.]+)'")
        return value


class RetryPolicy(StrictModel):
    """Retries of infrastructure failures: an attempt that ends with one of ``exit_codes`` (or whose
    process vanished) is started again, up to ``max_attempts`` attempts in all."""

    max_attempts: int = Field(1, ge=1, le=100)
    exit_codes: list[int] = Field(default_factory=lambda: list(DEFAULT_RETRY_EXIT_CODES))


class WarmPool(StrictModel):
    """Start the job's Python script in a process forked from a pool process that already imported the
    script's top-level packages (SageMaker's warm pools, Ray Tune's actor reuse): a tuning job's trials
    skip the interpreter start and imports. ``warm_pool: true`` takes the defaults."""

    keep_alive: Duration = Field(120.0, gt=0, le=3600, description="how long an idle pool process waits for a job")


class TrainingJob(ResourceSpec):
    KIND: ClassVar[str] = "TrainingJob"
    PLURAL: ClassVar[str] = "jobs"

    kind: str = "TrainingJob"
    code: str | None = Field(None, description="code directory (snapshotted at submit) or artifact URI")
    command: str | list[str] | None = Field(None, description="command run in the code directory")
    entrypoint: str | None = Field(None, description="module:function called with the hyperparameters")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict, description="channel name -> local path or URI")
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="env vars stored encrypted, never shown")
    resources: Resources = Field(default_factory=Resources, description="per worker")
    instance_count: int = Field(1, ge=1, le=256, description="workers, gang-scheduled: all start or none")
    distribution: Literal["none", "torch"] = Field("none", description="what the workers are told")
    max_runtime: Duration | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    compute: str | None = Field(None, description="compute backend; default the workspace's")
    spot: SpotPolicy | None = None
    experiment: str | None = Field(
        None, max_length=500, description="MLflow experiment of the job's run; default 'Default'"
    )
    warm_pool: WarmPool | None = Field(None, description="start Python code warm, imports already done")

    @field_validator("warm_pool", mode="before")
    @classmethod
    def _warm_pool_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @model_validator(mode="after")
    def _one_way_to_run(self) -> TrainingJob:
        if not self.command and not self.entrypoint:
            raise ValueError("give either command (like 'python train.py') or entrypoint (like 'train:main')")
        if self.command and self.entrypoint:
            raise ValueError("give command or entrypoint, not both")
        if self.entrypoint and not re.match(r"^[\w.]+:[\w]+$", self.entrypoint):
            raise ValueError(f"entrypoint {self.entrypoint!r} must look like module:function")
        if self.entrypoint and not self.code:
            raise ValueError("entrypoint needs code: the directory that holds its module")
        wait = self.spot.max_wait if self.spot else None
        if wait is not None and self.max_runtime is not None and wait < self.max_runtime:
            raise ValueError(
                f"spot.max_wait ({wait:g}s) is shorter than max_runtime ({self.max_runtime:g}s); max_wait bounds "
                "the whole job including waits and restarts, so it must be at least max_runtime"
            )
        return self

    @field_validator("inputs")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, source in value.items():
            if not CHANNEL_RE.match(channel):
                raise ValueError(f"input channel {channel!r} must start with a letter and use letters, digits, - or _")
            if not source:
                raise ValueError(f"input channel {channel!r} has an empty source")
        return value

    @field_validator("environment", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return {k: str(v) for k, v in value.items()}

    @property
    def argv(self) -> list[str] | None:
        if self.command is None:
            return None
        import shlex

        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


class JobTemplate(TrainingJob):
    """A ``TrainingJob`` without ``kind`` and ``name``, for the jobs another resource starts and names
    (tuning trials, pipeline steps). Subclasses say where it is written and how its jobs are named."""

    WHERE: ClassVar[str] = "a template"
    NAMED: ClassVar[str] = "it runs as a TrainingJob named by its owner"

    kind: str = Field("TrainingJob", exclude=True)
    name: str = Field("job", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_identity(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field in ("kind", "name"):
                if field in data:
                    raise ValueError(f"{field} is not allowed in {cls.WHERE}: {cls.NAMED}")
        return data
