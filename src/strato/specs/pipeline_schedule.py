"""The ``PipelineSchedule`` resource: run a pipeline on a cron schedule (SageMaker Pipelines' schedules,
Vertex AI's scheduled pipeline runs, Databricks Workflows' triggers).

kind: PipelineSchedule
name: nightly
pipeline: iris-flow
cron: "0 2 * * *"                 # UTC; five fields
parameters: {threshold: 0.9}
start: 2026-12-01T00:00:00Z       # optional window
end: 2027-06-01T00:00:00Z
max_concurrent: 1                 # a run due while this many still run is skipped (and recorded)
catch_up: false                   # true: runs missed while the control plane was down are started
paused: false
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from strato.specs.base import ResourceSpec, check_name


class PipelineSchedule(ResourceSpec):
    KIND: ClassVar[str] = "PipelineSchedule"
    PLURAL: ClassVar[str] = "pipelineschedules"

    kind: str = "PipelineSchedule"
    pipeline: str
    cron: str = Field(description="five-field cron expression, in UTC")
    parameters: dict[str, Any] = Field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    max_concurrent: int = Field(1, ge=1, le=100)
    catch_up: bool = False
    paused: bool = False

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, value: str) -> str:
        return check_name(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"cron {value!r} is not a five-field cron expression, e.g. '0 2 * * *' (02:00 UTC)")
        return value

    @model_validator(mode="after")
    def _window(self) -> PipelineSchedule:
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self
