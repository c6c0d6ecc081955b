"""The model registry: versions and aliases on MLflow, approvals with policy gates, model cards."""
