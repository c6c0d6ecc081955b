"""The registry's way to MLflow: a client on the managed tracking server (straight to it, not through
the proxy), a clear error when tracking is off or the server is not ready, and MLflow's errors turned
into Strato's. ``mlflow`` is imported on first use, so a control plane that never registers a model
never pays for the import."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato.errors import AlreadyExists, InvalidArgument, NotFound, StratoError, Unavailable
from strato.tracking.server import TrackingServer

if TYPE_CHECKING:
    from mlflow import MlflowClient

TRACKING_OFF = "experiment tracking is off: the model registry needs the managed MLflow server (setting tracking: true)"
READY_TIMEOUT = 30.0  # seconds a registry call waits for a (re)starting MLflow server


def error_code(exc: BaseException) -> str:
    """MLflow's error code of an ``MlflowException`` (``RESOURCE_DOES_NOT_EXIST``, ...), else ''."""
    return str(getattr(exc, "error_code", "") or "")


def is_mlflow_error(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException)


class Mlflow:
    def __init__(self, tracking: TrackingServer | None, ready_timeout: float = READY_TIMEOUT):
        self.tracking = tracking
        self.ready_timeout = ready_timeout
        self._client: MlflowClient | None = None
        self._uri: str | None = None
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        if self.tracking is None:
            raise Unavailable(TRACKING_OFF)
        if not self.tracking.ready and not self.tracking.wait_ready(self.ready_timeout):
            state = self.tracking.status()
            detail = f"; last error: {state['last_error']}" if state.get("last_error") else ""
            raise Unavailable(
                f"the managed MLflow server is not ready ({state['state']}{detail}); try again in a moment"
            )
        uri = self.tracking.tracking_uri
        if uri is None:
            raise Unavailable("the managed MLflow server is restarting; try again in a moment")
        return uri

    def client(self) -> MlflowClient:
        uri = self.uri
        with self._lock:
            if self._client is None or self._uri != uri:  # a restarted server listens on a new port
                from mlflow import MlflowClient

                self._client, self._uri = MlflowClient(tracking_uri=uri, registry_uri=uri), uri
            return self._client

    def download_text(self, artifact_uri: str) -> str | None:
        """The text of one artifact (e.g. ``<model>/MLmodel``), or None when it does not exist."""
        import mlflow.artifacts

        with tempfile.TemporaryDirectory(prefix="strato-registry-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=self.uri
                )
            except Exception as exc:
                if is_mlflow_error(exc) or isinstance(exc, OSError):
                    return None
                raise
            file = Path(path)
            return file.read_text(encoding="utf-8") if file.is_file() else None


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn an ``MlflowException`` raised inside into the ``StratoError`` of its kind, prefixed by
    ``what`` (e.g. "model 'iris'"); anything else passes through."""
    try:
        yield
    except StratoError:
        raise
    except Exception as exc:
        if not is_mlflow_error(exc):
            raise
        message = _message(exc)
        code = error_code(exc)
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFound(f"{what}: {message}") from None
        if code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise AlreadyExists(f"{what}: {message}") from None
        if code == "INVALID_PARAMETER_VALUE":
            raise InvalidArgument(f"{what}: {message}") from None
        raise Unavailable(f"{what}: the MLflow server failed: {message}") from None


def _message(exc: Any) -> str:
    text = str(getattr(exc, "message", "") or exc)
    code = error_code(exc)
    return text.removeprefix(f"{code}: ").strip() if code else text.strip()
