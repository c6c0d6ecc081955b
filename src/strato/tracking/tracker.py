"""Every training and tuning job is an MLflow run, kept by the platform without any code in the job.

* ``ensure_run`` (called when a job first starts) creates the run in the job's experiment with the
  hyperparameters as params and tags linking job and run (a tuning trial's run is a child of its tuning
  job's run), records it in ``tracking_runs`` and in lineage, and is idempotent: restarts and retries of
  the job keep one run. The job's task gets ``MLFLOW_TRACKING_URI`` (the control plane's ``/mlflow``),
  ``MLFLOW_EXPERIMENT_ID`` and ``MLFLOW_RUN_ID``, so ``mlflow.log_metric`` in a script logs into it.
* The forwarder (a thread) copies what the platform observes into the run: metrics captured from the
  log or reported with ``strato.runtime.report``, the system metrics it samples (CPU, memory), and at
  the end the outcome (goodput, where the model went) and the run's final status. It resumes from a
  cursor stored with the run, so a control plane restart or an MLflow server that was down loses
  nothing: points wait in Strato's database until MLflow takes them.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from strato.errors import StratoError, Unavailable
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.store.metadata import MetadataStore, ResourceRecord
from strato.tracking.rest import Metric, MlflowRest, TrackingError, metric_key
from strato.tracking.runs import RunIndex, TrackedRun
from strato.tracking.server import PREFIX, TrackingServer

log = logging.getLogger("strato.tracking")

FORWARD_EVERY = 1.0  # seconds between forwarding rounds when nothing wakes the forwarder
RUN_STATUS = {"Completed": "FINISHED", "Failed": "FAILED"}  # anything else that ends is KILLED


class TrackingUnavailable(Unavailable):
    """The tracking server cannot take a new run right now (starting, restarting); retry later."""


class Tracker:
    def __init__(
        self,
        store: MetadataStore,
        server: TrackingServer,
        *,
        public_url: str,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.server = server
        self.public_uri = public_url.rstrip("/") + PREFIX
        self.token = token
        self.clock = clock
        self.runs = RunIndex(store)
        self.lineage = Lineage(store)
        self._rest: MlflowRest | None = None
        self._experiments: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _client(self) -> MlflowRest:
        uri = self.server.tracking_uri
        if not self.server.ready or uri is None:
            raise TrackingUnavailable("waiting for the MLflow tracking server to be ready")
        if self._rest is None or self._rest.tracking_uri != uri:  # a restarted server has a new port
            if self._rest is not None:
                self._rest.close()
            self._rest = MlflowRest(uri)
            self._experiments.clear()
        return self._rest

    # Runs --------------------------------------------------------------------------------------------
    def ensure_run(
        self,
        record: ResourceRecord,
        *,
        experiment: str,
        params: dict[str, Any],
        tags: dict[str, str] | None = None,
        parent_uid: str | None = None,
        lineage_kind: str = kinds.JOB,
    ) -> TrackedRun:
        """The resource's run, created on first call. Raises ``TrackingUnavailable`` while MLflow is not
        there (the caller waits and calls again)."""
        found = self.runs.get(record.uid)
        if found is not None:
            if found.ended and record.active:  # a stopped tuning job resumed
                self._call(lambda rest: rest.end_run(found.run_id, "RUNNING", None))
                self.runs.reopen(record.uid)
            return found
        parent = self.runs.get(parent_uid) if parent_uid else None

        def create(rest: MlflowRest) -> TrackedRun:
            experiment_id = self._experiments.get(experiment) or rest.experiment_id(experiment)
            self._experiments[experiment] = experiment_id
            run_tags = {
                "mlflow.runName": record.name,
                "mlflow.source.type": "JOB",
                "mlflow.source.name": f"strato:{record.kind}/{record.name}",
                "strato.kind": record.kind,
                "strato.name": record.name,
                "strato.uid": record.uid,
                **(tags or {}),
            }
            if parent is not None:
                run_tags["mlflow.parentRunId"] = parent.run_id
            run_id = rest.create_run(experiment_id, record.name, run_tags, int(record.created_at * 1000))
            rest.log_batch(run_id, params={k: _text(v) for k, v in params.items()})
            return self.runs.add(record.uid, run_id, experiment_id)

        run = self._call(create)
        self.lineage.node(kinds.RUN, run.run_id, record.name, experiment_id=run.experiment_id)
        self.lineage.node(lineage_kind, record.uid, record.name)
        self.lineage.link((lineage_kind, record.uid), (kinds.RUN, run.run_id), kinds.TRACKED_AS)
        self.wake()
        return run

    def _call(self, action: Callable[[MlflowRest], Any]) -> Any:
        try:
            return action(self._client())
        except TrackingError as exc:
            raise TrackingUnavailable(f"the MLflow tracking server refused or missed a call: {exc}") from None

    def task_environment(self, run: TrackedRun) -> tuple[dict[str, str], dict[str, str]]:
        """(environment, secret environment) of a task that logs into ``run``."""
        env = {
            "MLFLOW_TRACKING_URI": self.public_uri,
            "MLFLOW_EXPERIMENT_ID": run.experiment_id,
            "MLFLOW_RUN_ID": run.run_id,
        }
        secret = {"MLFLOW_TRACKING_TOKEN": self.token} if self.token else {}
        return env, secret

    # Forwarding --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._forward_loop, name="strato-tracking", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._rest is not None:
            self._rest.close()
            self._rest = None

    def wake(self, *_: object) -> None:
        self._wake.set()

    def _forward_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FORWARD_EVERY)
            self._wake.clear()
            try:
                self.forward_once()
            except TrackingUnavailable:
                pass  # MLflow is (re)starting: everything waits in Strato's database
            except Exception:
                log.exception("forwarding to MLflow failed; retrying")

    def forward_once(self) -> int:
        """One round over the open runs; returns how many metric points went to MLflow."""
        sent = 0
        for run in self.runs.open_runs():
            try:
                record = self.store.get_by_uid(run.resource_uid)
            except StratoError:
                record = None
            sent += self._forward_metrics(run)
            if record is None:  # deleted before its run ended
                self._end_deleted(run)
            elif not record.active:
                self._finish(run, record)
        return sent

    def _forward_metrics(self, run: TrackedRun) -> int:
        sent, cursor = 0, run.metric_cursor
        while True:
            batch = self.store.metrics_since(run.resource_uid, cursor, limit=1000)
            if not batch:
                return sent
            # A point captured from the log has no step: number them per name (0, 1, 2, ...), so MLflow
            # orders points captured in the same millisecond and shows the last as the latest value.
            seen = self.store.metric_counts(run.resource_uid, cursor) if any(p.step is None for _, p in batch) else {}
            metrics = []
            for _, p in batch:
                step = p.step if p.step is not None else seen.get(p.name, 0)
                seen[p.name] = seen.get(p.name, 0) + 1
                metrics.append(Metric(metric_key(p.name), float(p.value), int(p.at * 1000), int(step)))
            self._call(functools.partial(_log_metrics, run_id=run.run_id, metrics=metrics))
            cursor = batch[-1][0]
            self.runs.advance(run.resource_uid, cursor)
            sent += len(batch)

    def _end_deleted(self, run: TrackedRun) -> None:
        end_ms = int(self.clock() * 1000)
        self._call(functools.partial(MlflowRest.end_run, run_id=run.run_id, status="KILLED", end_ms=end_ms))
        self.runs.mark_ended(run.resource_uid)

    def _finish(self, run: TrackedRun, record: ResourceRecord) -> None:
        status = record.status
        metrics, tags = _outcome(record)
        now_ms = int(float(status.get("ended_at") or self.clock()) * 1000)
        rows = [Metric(k, v, now_ms, 0) for k, v in metrics.items()]

        def finish(rest: MlflowRest) -> None:  # the strato.state tag last: it says the platform is done
            rest.end_run(run.run_id, RUN_STATUS.get(record.state, "KILLED"), now_ms)
            rest.log_batch(run.run_id, metrics=rows, tags=tags)

        self._call(finish)
        self.runs.mark_ended(record.uid)


def _log_metrics(rest: MlflowRest, *, run_id: str, metrics: list[Metric]) -> None:
    rest.log_batch(run_id, metrics=metrics)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _outcome(record: ResourceRecord) -> tuple[dict[str, float], dict[str, str]]:
    """What the platform knows about how a resource ended, as final metrics and tags of its run."""
    status = record.status
    tags = {"strato.state": record.state}
    if status.get("message"):
        tags["strato.message"] = str(status["message"])
    metrics: dict[str, float] = {}
    for key, value in (status.get("goodput") or {}).items():
        metrics[f"strato/{key}"] = float(value)
    for name in ("model_uri", "output_uri", "checkpoints_uri", "log_uri"):
        if status.get(name):
            tags[f"strato.{name}"] = str(status[name])
    if status.get("cost") is not None:
        metrics["strato/cost_usd"] = float(
            status["cost"]["total"] if isinstance(status["cost"], dict) else status["cost"]
        )
    best = status.get("best")
    if isinstance(best, dict) and best.get("objective") is not None:
        metrics["best/objective"] = float(best["objective"])
        tags["strato.best_trial"] = str(best.get("job", ""))
    return metrics, tags
