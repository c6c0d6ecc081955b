"""The few calls of MLflow's REST API (2.0) the control plane makes itself: experiments, runs and
``log-batch``. Plain httpx with short timeouts and no retries, so a tracking server that is down costs
the reconcile loop one failed call (the caller retries on its next pass) instead of MLflow's client's
minutes of backoff, and the control plane never imports the mlflow package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

API = "/api/2.0/mlflow"
MAX_METRICS_PER_BATCH = 1000  # MLflow's limits per log-batch call
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


class TrackingError(Exception):
    """MLflow answered with an error, or did not answer."""

    def __init__(self, message: str, code: str = "", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


def metric_key(name: str) -> str:
    """A metric or param name MLflow accepts (letters, digits, ``_ - . / :`` and spaces)."""
    return _BAD_KEY_CHARS.sub("_", name)[:MAX_KEY] or "_"


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp_ms: int
    step: int


class MlflowRest:
    def __init__(self, tracking_uri: str, *, timeout: float = 5.0):
        self.tracking_uri = tracking_uri.rstrip("/")
        self._http = httpx.Client(base_url=self.tracking_uri + API, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TrackingError(f"the MLflow server did not answer ({type(exc).__name__}: {exc})") from None
        try:
            data: dict[str, Any] = response.json() if response.content else {}
        except ValueError:
            data = {}
        if response.status_code >= 400:
            message = str(data.get("message") or response.text[:300])
            raise TrackingError(message, str(data.get("error_code", "")), response.status_code)
        return data

    # Experiments ---------------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created if it does not exist (safe under races)."""
        for _ in range(3):
            try:
                found = self._call("GET", "/experiments/get-by-name", params={"experiment_name": name})
                return str(found["experiment"]["experiment_id"])
            except TrackingError as exc:
                if exc.code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            try:
                return str(self._call("POST", "/experiments/create", json={"name": name})["experiment_id"])
            except TrackingError as exc:
                if exc.code != "RESOURCE_ALREADY_EXISTS":
                    raise
        raise TrackingError(f"could not get or create the MLflow experiment {name!r}")

    # Runs ----------------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str], start_ms: int) -> str:
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": start_ms,
            "tags": [{"key": k, "value": v[:MAX_TAG_VALUE]} for k, v in tags.items()],
        }
        return str(self._call("POST", "/runs/create", json=body)["run"]["info"]["run_id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", "/runs/get", params={"run_id": run_id})["run"])

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: list[Metric] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Everything in as many calls as MLflow's per-call limits need."""
        metric_rows = [
            {"key": m.key, "value": m.value, "timestamp": m.timestamp_ms, "step": m.step} for m in metrics or []
        ]
        param_rows = [{"key": metric_key(k), "value": v[:MAX_PARAM_VALUE]} for k, v in (params or {}).items()]
        tag_rows = [{"key": k, "value": v[:MAX_TAG_VALUE]} for k, v in (tags or {}).items()]
        while metric_rows or param_rows or tag_rows:
            body = {
                "run_id": run_id,
                "metrics": metric_rows[:MAX_METRICS_PER_BATCH],
                "params": param_rows[:MAX_PARAMS_TAGS_PER_BATCH],
                "tags": tag_rows[:MAX_PARAMS_TAGS_PER_BATCH],
            }
            self._call("POST", "/runs/log-batch", json=body)
            metric_rows = metric_rows[MAX_METRICS_PER_BATCH:]
            param_rows = param_rows[MAX_PARAMS_TAGS_PER_BATCH:]
            tag_rows = tag_rows[MAX_PARAMS_TAGS_PER_BATCH:]

    def end_run(self, run_id: str, status: str, end_ms: int | None) -> None:
        """Set the run's status (``end_ms`` None: reopened, no end time)."""
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if end_ms is not None:
            body["end_time"] = end_ms
        self._call("POST", "/runs/update", json=body)
