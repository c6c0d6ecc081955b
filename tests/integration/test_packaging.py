"""A job's model directory packaged into its run on a real ``mlflow server`` (started here, artifacts
proxied by the server, so the model travels as ``mlflow-artifacts:``), then registered and loaded by
name, the way the registry will use it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from strato.compute.service_process import free_port
from strato.tracking.packaging import package_model
from tests.helpers import wait_until

pytestmark = pytest.mark.slow

mlflow = pytest.importorskip("mlflow")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sagemaker-style"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _healthy(url), timeout=180, interval=0.2, what="mlflow server")
        assert process.poll() is None, (root / "server.log").read_text()[-3000:]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", url)
            mlflow.set_tracking_uri(url)
            try:
                yield url
            finally:
                mlflow.set_tracking_uri(None)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def run_id(server: str) -> str:
    client = mlflow.MlflowClient()
    experiment = client.create_experiment(f"job-{uuid.uuid4().hex[:8]}")
    return str(client.create_run(experiment).info.run_id)


def _train(model_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location("sagemaker_style_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(str(model_dir))
    return joblib.load(model_dir / "model.joblib")


def test_a_wrapped_model_dir_through_the_server_registers_and_loads_by_name(tmp_path: Path, run_id: str) -> None:
    estimator = _train(tmp_path / "model")

    result = package_model(tmp_path / "model", EXAMPLE, run_id=run_id)

    assert result is not None and result.logged and result.source == "pyfunc", result
    assert result.signature and result.input_example
    logged = mlflow.MlflowClient().get_logged_model(result.model_id)
    assert logged.artifact_location.startswith("mlflow-artifacts:"), logged.artifact_location
    version = mlflow.register_model(result.model_uri, "iris")
    assert version.version == "1"

    loaded = mlflow.pyfunc.load_model("models:/iris/1")
    frame = load_iris(as_frame=True).frame.drop(columns=["target"]).iloc[::7]
    classes = ["setosa", "versicolor", "virginica"]
    assert list(loaded.predict(frame)) == [classes[i] for i in estimator.predict(frame)]


def test_an_mlflow_model_in_the_model_dir_through_the_server(tmp_path: Path, run_id: str) -> None:
    estimator = _train(tmp_path / "trained")
    frame = pd.read_json(tmp_path / "trained" / "input_example.json")
    mlflow.sklearn.save_model(
        estimator,
        str(tmp_path / "model"),
        input_example=frame,
        pip_requirements=["scikit-learn"],
        serialization_format="cloudpickle",
    )

    result = package_model(tmp_path / "model", None, run_id=run_id)

    assert result is not None and result.source == "mlmodel" and result.flavor == "sklearn", result
    version = mlflow.register_model(result.model_uri, "iris-mlmodel")
    loaded = mlflow.pyfunc.load_model(f"models:/iris-mlmodel/{version.version}")
    np.testing.assert_array_equal(loaded.predict(frame), estimator.predict(frame))
