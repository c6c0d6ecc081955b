"""The ``BatchTransformJob`` resource: SageMaker Batch Transform, Vertex AI's BatchPredictionJob and
Azure ML's batch endpoints. A model scores a whole input (Parquet, a directory of Parquet files, or CSV)
into an output of Parquet parts, with parallel workers, and resumes after a crash scoring no row twice.

kind: BatchTransformJob
name: score-iris
model: models:/iris@champion        # a version, an alias (resolved when the job starts) or a directory
input: ./data/iris.parquet          # a Parquet file or directory, a Delta table or lake://TABLE[@VERSION]
                                    # (a version is pinned when the job starts), or a CSV file with a header
output_format: delta                # parquet (the default): part-K.parquet files; delta: also a Delta log
output: ./scored                    # default: <artifacts>/batch/<name>
batch_size: 10000                   # rows per part (the unit of progress and of resumption)
workers: 2                          # worker processes sharing the parts
join_input: all                     # none | all | [col, col]: input columns kept beside the predictions
resources: {cpus: 1, memory: 1Gi}   # per worker
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from strato.specs.base import Resources, ResourceSpec, StrictModel


class BatchRetry(StrictModel):
    max_attempts: int = Field(3, ge=1, le=20, description="per worker; a restarted worker skips finished parts")


class BatchTransformJob(ResourceSpec):
    KIND: ClassVar[str] = "BatchTransformJob"
    PLURAL: ClassVar[str] = "batchtransformjobs"

    kind: str = "BatchTransformJob"
    model: str = Field(min_length=1, description="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ or a directory")
    input: str = Field(
        min_length=1, description="a Parquet file or directory, a Delta table, or a CSV file with a header"
    )
    input_format: Literal["auto", "parquet", "csv"] = "auto"
    output: str | None = Field(None, description="directory of the output parts; default <artifacts>/batch/<name>")
    output_format: Literal["parquet", "delta"] = Field("parquet", description="delta: the parts become a Delta table")
    batch_size: int = Field(10_000, ge=1, le=10_000_000, description="rows per part (progress, resumption)")
    workers: int = Field(1, ge=1, le=256)
    join_input: Literal["none", "all"] | list[str] = "none"
    prediction_column: str = Field("prediction", min_length=1, max_length=255)
    resources: Resources = Field(default_factory=Resources, description="per worker")
    retry: BatchRetry = Field(default_factory=BatchRetry)
    compute: str | None = Field(None, description="compute backend; default the workspace's")

    @field_validator("join_input")
    @classmethod
    def _columns(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and (not value or not all(value)):
            raise ValueError("join_input: give none, all, or a non-empty list of column names")
        return value
