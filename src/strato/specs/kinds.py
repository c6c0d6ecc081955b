"""Which spec class serves each resource kind, by kind name, plural and short aliases."""

from __future__ import annotations

from strato._registry import Registry
from strato.specs.approval_policy import ApprovalPolicy
from strato.specs.base import ResourceSpec
from strato.specs.batch_transform import BatchTransformJob
from strato.specs.budget import Budget
from strato.specs.endpoint import Endpoint
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView
from strato.specs.pipeline import Pipeline
from strato.specs.pipeline_run import PipelineRun
from strato.specs.pipeline_schedule import PipelineSchedule
from strato.specs.training_job import TrainingJob
from strato.specs.tuning_job import TuningJob

KINDS: Registry[type[ResourceSpec]] = Registry("resource kind")
KINDS.register("TrainingJob", "trainingjobs", "job", "jobs")(TrainingJob)
KINDS.register("TuningJob", "tuningjobs", "tuningjob", "tuning", "tunings")(TuningJob)
KINDS.register("Endpoint", "endpoints", "endpoint", "ep")(Endpoint)
KINDS.register("BatchTransformJob", "batchtransformjobs", "batchtransformjob", "batch", "transform", "transforms")(
    BatchTransformJob
)
KINDS.register("Entity", "entities", "entity")(Entity)
KINDS.register("FeatureView", "featureviews", "featureview", "fv", "view", "views")(FeatureView)
KINDS.register("FeatureService", "featureservices", "featureservice", "fs")(FeatureService)
KINDS.register("OnDemandFeatureView", "ondemandfeatureviews", "ondemandfeatureview", "odfv")(OnDemandFeatureView)
KINDS.register("Budget", "budgets", "budget")(Budget)
KINDS.register("Pipeline", "pipelines", "pipeline")(Pipeline)
KINDS.register("PipelineRun", "pipelineruns", "pipelinerun", "run", "runs")(PipelineRun)
KINDS.register("PipelineSchedule", "pipelineschedules", "pipelineschedule", "schedule", "schedules")(PipelineSchedule)
KINDS.register("ApprovalPolicy", "approvalpolicies", "approvalpolicy", "policy", "policies")(ApprovalPolicy)


def spec_class(kind: str) -> type[ResourceSpec]:
    return KINDS.get(kind)
