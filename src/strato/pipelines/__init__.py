"""Pipelines: DAGs of steps with parameters, conditions, caching and retries."""
