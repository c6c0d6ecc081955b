"""Resource specs: pydantic models users write as YAML or build in Python."""

from strato.specs.base import Resources, ResourceSpec
from strato.specs.batch_transform import BatchTransformJob
from strato.specs.endpoint import Endpoint
from strato.specs.features import Entity, Feature, FeatureService, FeatureView, OnDemandFeatureView
from strato.specs.kinds import KINDS, spec_class
from strato.specs.loader import load_yaml_file, load_yaml_text, parse_spec
from strato.specs.spot import InterruptionModel, RecoveryPolicy, SpotPolicy
from strato.specs.training_job import MetricDefinition, RetryPolicy, TrainingJob
from strato.specs.tuning_job import EarlyStopping, Objective, Parameter, TrialTemplate, TuningJob

__all__ = [
    "KINDS",
    "BatchTransformJob",
    "EarlyStopping",
    "Endpoint",
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureView",
    "InterruptionModel",
    "MetricDefinition",
    "Objective",
    "OnDemandFeatureView",
    "Parameter",
    "RecoveryPolicy",
    "ResourceSpec",
    "Resources",
    "RetryPolicy",
    "SpotPolicy",
    "TrainingJob",
    "TrialTemplate",
    "TuningJob",
    "load_yaml_file",
    "load_yaml_text",
    "parse_spec",
    "spec_class",
]
