"""Endpoints on the model registry for real (a managed MLflow server): a variant follows an alias, a
models:/ model is fetched through the control plane with its token, and a shadow comparison lands on
the shadow version's run where an approval policy gates on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from strato.client import Client
from strato.errors import StratoError
from strato.specs.endpoint import Endpoint
from tests.conftest import warm_pools
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SPLIT = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}


def _log_model(url: str, estimator: Any, name: str) -> str:
    """A run holding ``estimator`` fitted on iris, logged with an explicit client (no fluent globals)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    estimator.fit(x, y)
    client = mlflow.MlflowClient(f"{url}/mlflow")
    experiment = client.get_experiment_by_name("endpoint-tests") or client.get_experiment(
        client.create_experiment("endpoint-tests")
    )
    mlflow.set_tracking_uri(f"{url}/mlflow")
    try:
        with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=name) as run:
            mlflow.sklearn.log_model(
                estimator, name="model", signature=infer_signature(x, estimator.predict(x)),
                serialization_format="cloudpickle", pip_requirements=["scikit-learn"],
            )  # fmt: skip
    finally:
        mlflow.set_tracking_uri(None)
    return str(run.info.run_id)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("endpoints-registry") / "home"
    with warm_pools(), control_plane(home, tracking=True) as (_, client):
        wait_until(
            lambda: httpx.get(f"{client.url}/healthz", timeout=10).json()["tracking"]["state"] == "ready",
            timeout=180, interval=0.2, what="MLflow ready",
        )  # fmt: skip
        for name, estimator in (("logistic", LogisticRegression(max_iter=500)),
                                ("constant", DummyClassifier(strategy="constant", constant=2))):  # fmt: skip
            client.models.register("iris", run_id=_log_model(client.url, estimator, name))
        client.models.set_alias("iris", "champion", "1")
        try:
            yield client
        finally:
            for record in client.list("endpoints"):
                client.delete("endpoints", record["name"])
            wait_until(lambda: not client.list("endpoints"), 60, what="endpoints deleted")


def invoke(client: Client, name: str) -> Any:
    return httpx.post(f"{client.url}/endpoints/{name}/invocations", json=SPLIT, timeout=60).json()["predictions"]


def test_a_variant_follows_its_alias_and_a_shadow_comparison_gates_approval(plane: Client) -> None:
    client = plane
    client.endpoints.apply(
        Endpoint(name="iris", variants=[{"model": "models:/iris@champion"}],
                 shadow={"model": "models:/iris/2", "sample_percent": 100})
    )  # fmt: skip
    endpoint = client.endpoints.wait("iris", timeout=180)
    assert endpoint["status"]["variants"]["default"]["version"] == "1"
    assert invoke(client, "iris") == [0, 2]

    # The shadow (version 2, which always answers 2) disagrees with production on every request.
    wait_until(
        lambda: any(
            r["state"] == "Ready" for r in client.endpoints.get("iris")["status"]["variants"]["shadow"]["replicas"]
        ),
        120,
    )
    for _ in range(30):
        invoke(client, "iris")
    run_id = client.models.get("iris", "2")["run_id"]
    mlflow_client = __import__("mlflow").MlflowClient(f"{client.url}/mlflow")
    metrics = wait_until(
        lambda: (
            mlflow_client.get_run(run_id).data.metrics.get("shadow:compared")
            and mlflow_client.get_run(run_id).data.metrics
        ),
        60,
        what="shadow metrics on the run",
    )
    assert metrics["shadow:agreement"] == 0.0 and metrics["shadow:compared"] >= 20
    client.apply({"kind": "ApprovalPolicy", "name": "iris", "gates": ["shadow:agreement >= 0.9"]})
    with pytest.raises(StratoError, match="shadow:agreement"):
        client.models.approve("iris", "2", reason="promote the shadow")

    # Moving the alias rolls the variant to version 2 (fetched through the control plane, with its token).
    client.models.set_alias("iris", "champion", "2")
    wait_until(lambda: invoke(client, "iris") == [2, 2], 180, interval=0.2, what="answers from version 2")
    assert client.endpoints.get("iris")["status"]["variants"]["default"]["version"] == "2"
