"""The ``PipelineRun`` resource: one execution of a stored ``Pipeline`` with its parameters.

kind: PipelineRun
name: iris-flow-1
pipeline: iris-flow
parameters: {max_leaf_nodes: 16}
no_cache: false                   # true: every step runs, nothing is reused
resume_from: iris-flow-0          # selective execution: the steps that succeeded there are reused, the
                                  # failed and skipped ones run (same pipeline revision and parameters)
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from strato.specs.base import ResourceSpec, check_name


class PipelineRun(ResourceSpec):
    KIND: ClassVar[str] = "PipelineRun"
    PLURAL: ClassVar[str] = "pipelineruns"

    kind: str = "PipelineRun"
    pipeline: str = Field(min_length=1, description="name of a Pipeline")
    parameters: dict[str, Any] = Field(default_factory=dict)
    no_cache: bool = False
    resume_from: str | None = Field(None, description="a failed or stopped run of the same pipeline")

    def model_post_init(self, context: Any) -> None:
        check_name(self.pipeline)
