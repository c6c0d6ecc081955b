"""The workspace's managed MLflow tracking server (as SageMaker and Databricks host one): started and
supervised by the control plane, restarted when it dies, on Strato's database and artifact store, and
reached by users only through the control plane's ``/mlflow`` address (``server/mlflow_proxy.py``).

* **Database.** SQLite (the default) gets a file of its own beside Strato's (``mlflow.db``): MLflow
  versions its schema with Alembic in a table named ``alembic_version``, which Strato's schema already
  has. PostgreSQL gets a schema of its own (``mlflow``) in Strato's database, for the same reason.
* **Artifacts.** Proxied by the server (``--serve-artifacts``) into ``<artifact store>/mlflow``, local
  or S3, so a client needs no credentials of its own.
* **Address.** The server runs with ``--static-prefix /mlflow``, so the control plane forwards paths as
  they are, UI included.
* MLflow's background job runner (GenAI jobs, seven huey processes, ~1.2 GB) is turned off.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from strato.compute.service_process import ServiceProcess, free_port
from strato.config import Settings

log = logging.getLogger("strato.tracking")

PREFIX = "/mlflow"
SCHEMA = "mlflow"
STARTUP_TIMEOUT = 120.0  # seconds a start may take (first start creates ~40 tables)
HEALTH_EVERY = 5.0
HEALTH_FAILURES = 3  # consecutive failed health checks of a live process before it is restarted
MAX_BACKOFF = 30.0


def backend_store_uri(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            raise ValueError("the managed MLflow server needs a file database, not an in-memory one")
        return f"sqlite:///{Path(database).with_name('mlflow.db')}"
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
        url = url.update_query_dict({"options": f"-csearch_path={SCHEMA}"})
        return url.render_as_string(hide_password=False)
    return url.render_as_string(hide_password=False)


def prepare_database(database_url: str) -> None:
    """PostgreSQL: create MLflow's schema (MLflow creates its tables in it on first start)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    finally:
        engine.dispose()


def artifacts_destination(artifact_url: str) -> str:
    return artifact_url.rstrip("/") + "/mlflow"


def server_environment(artifact_options: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATO_", "MLFLOW_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    # fsspec-style options of an S3 artifact store, in the names boto3 (MLflow's S3 client) reads.
    key, secret = artifact_options.get("key"), artifact_options.get("secret")
    endpoint = artifact_options.get("endpoint_url") or (artifact_options.get("client_kwargs") or {}).get("endpoint_url")
    region = (artifact_options.get("client_kwargs") or {}).get("region_name")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("MLFLOW_S3_ENDPOINT_URL", endpoint),
        ("AWS_DEFAULT_REGION", region),
    ):
        if value:
            env[name] = str(value)
    return env


class TrackingServer:
    """Starts, adopts, health-checks and restarts the MLflow server in a supervisor thread."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] | None = None):
        self.settings = settings
        self.process = ServiceProcess("mlflow", settings.home / "mlflow", health_path=PREFIX + "/health")
        self.restarts = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._sleep = sleep or self._stop.wait

    # Addresses -----------------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        """``http://127.0.0.1:PORT`` of the server process, when there is one."""
        return self.process.url()

    @property
    def tracking_uri(self) -> str | None:
        """The URI the platform's own MLflow client uses (straight to the server, not through the proxy)."""
        base = self.base_url
        return base + PREFIX if base else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def status(self) -> dict[str, Any]:
        state = "ready" if self.ready else ("starting" if self._thread and self._thread.is_alive() else "stopped")
        return {
            "state": state,
            "pid": self.process.info.pid if self.process.info else None,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "log": str(self.process.log_file),
        }

    # Lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name="strato-mlflow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._ready.clear()
        self.process.stop()

    def _supervise(self) -> None:
        try:
            prepare_database(self.settings.resolved_database_url)
        except Exception as exc:  # the server's start below reports the same problem in its log
            log.warning("could not prepare MLflow's database schema: %s", exc)
        adopted = self.process.adopt() and self._wait_healthy(10.0)
        if adopted:
            log.info("adopted the running MLflow server (pid %s)", self.process.info and self.process.info.pid)
            self._ready.set()
        backoff = 1.0
        failures = 0
        next_check = time.monotonic() + HEALTH_EVERY
        while not self._stop.is_set():
            if not self.process.alive():
                if self._ready.is_set():
                    self.restarts += 1
                    self.last_error = f"the MLflow server exited; restarting (restart {self.restarts})"
                    log.warning(self.last_error)
                self._ready.clear()
                if self._launch():
                    self._ready.set()
                    backoff, failures = 1.0, 0
                else:
                    self.process.stop(grace=2.0)
                    self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                next_check = time.monotonic() + HEALTH_EVERY
                continue
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + HEALTH_EVERY
                failures = 0 if self.process.healthy() else failures + 1
                if failures >= HEALTH_FAILURES:
                    self.last_error = "the MLflow server stopped answering; restarting it"
                    log.warning(self.last_error)
                    self.process.stop(grace=2.0)
                    failures = 0
                    continue
            self._sleep(0.25)

    def _launch(self) -> bool:
        port = free_port()
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_store_uri(self.settings.resolved_database_url),
            "--artifacts-destination", artifacts_destination(self.settings.resolved_artifact_url),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
            "--static-prefix", PREFIX,
            "--uvicorn-opts", "--no-access-log",  # one log line per logged metric otherwise
        ]  # fmt: skip
        self.process.start(command, server_environment(self.settings.artifact_options), port)
        if self._wait_healthy(STARTUP_TIMEOUT):
            log.info("MLflow tracking server ready on port %s", port)
            self.last_error = ""
            return True
        self.last_error = f"the MLflow server did not become ready; see {self.process.log_file}"
        log.warning(self.last_error)
        return False

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if not self.process.alive():
                return False
            if self.process.healthy(timeout=1.0):
                return True
            self._stop.wait(0.2)
        return False
