"""Managed training jobs: spec -> task on a compute backend -> model and outputs in the artifact store."""
