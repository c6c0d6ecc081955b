"""Strato: an open-source ML platform you run yourself.

    import strato
    client = strato.connect()
    job = client.jobs.submit(strato.TrainingJob(name="iris", code="./src", command="python train.py"))
    job.wait(); print(job.status, job.metrics)

Names are imported lazily (and ``typing`` is not imported) so ``import strato`` stays fast: it runs in
every task process.
"""

from __future__ import annotations

from importlib import import_module

from strato._version import __version__

_EXPORTS = {
    "connect": "strato.client",
    "Client": "strato.client",
    "Job": "strato.client",
    "TrainingJob": "strato.specs",
    "TuningJob": "strato.specs",
    "Endpoint": "strato.specs",
    "BatchTransformJob": "strato.specs",
    "Entity": "strato.specs",
    "Feature": "strato.specs",
    "FeatureView": "strato.specs",
    "FeatureService": "strato.specs",
    "OnDemandFeatureView": "strato.specs",
    "Tuning": "strato.client",
    "Resources": "strato.specs",
    "MetricDefinition": "strato.specs",
    "RetryPolicy": "strato.specs",
    "load_yaml_file": "strato.specs",
    "StratoError": "strato.errors",
    "Settings": "strato.config",
    "load_settings": "strato.config",
}

__all__ = [
    "BatchTransformJob",
    "Client",
    "Endpoint",
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureView",
    "Job",
    "MetricDefinition",
    "OnDemandFeatureView",
    "Resources",
    "RetryPolicy",
    "Settings",
    "StratoError",
    "TrainingJob",
    "Tuning",
    "TuningJob",
    "__version__",
    "connect",
    "load_settings",
    "load_yaml_file",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'strato' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
