"""The SDK: a typed client over the control plane's REST API."""

from strato.client.client import Client, connect
from strato.client.jobs import Job, JobsClient
from strato.client.tuning import Tuning, TuningClient

__all__ = ["Client", "Job", "JobsClient", "Tuning", "TuningClient", "connect"]
