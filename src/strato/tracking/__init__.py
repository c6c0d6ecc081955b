"""Experiment tracking on a managed MLflow server: the server, the run of every job."""
