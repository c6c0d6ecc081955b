"""Endpoints for real: replica processes started by the control plane, requests through its router over
real HTTP, both protocols, bad payloads, a replica killed under load, a model update under load, a model
that fails to load, a model that raises, and scale to zero and back."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from strato.client import Client
from strato.config import Settings
from strato.specs.endpoint import Endpoint
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    return x, y.to_numpy()


def save_sklearn(path: Path, estimator: Any) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    x, y = _iris()
    estimator.fit(x, y)
    mlflow.sklearn.save_model(estimator, str(path), signature=infer_signature(x, estimator.predict(x)))
    return path


PICKY = """
import mlflow
import numpy as np


class Picky(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if (model_input["sepal_length"] < 0).any():
            raise ValueError("sepal_length cannot be negative")
        return np.ones(len(model_input), dtype=np.int64)


mlflow.models.set_model(Picky())
"""


def save_picky(root: Path) -> Path:
    """A model from code (the replica imports no test module) that raises on some inputs."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    x, y = _iris()
    (root / "picky.py").write_text(PICKY)
    path = root / "picky"
    mlflow.pyfunc.save_model(str(path), python_model=str(root / "picky.py"), signature=infer_signature(x, y))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("models")
    broken = root / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module_anywhere}}\n")
    return {
        "picky": save_picky(root),
        "logistic": save_sklearn(root / "logistic", LogisticRegression(max_iter=500)),
        "constant": save_sklearn(root / "constant", DummyClassifier(strategy="constant", constant=2)),
        "broken": broken,
    }


@pytest.fixture
def plane(tmp_path: Path, warm_dir: Path) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path / "home") as (settings, client):
        try:
            yield settings, client
        finally:  # replicas outlive a control plane (it re-adopts them): delete what the test left
            for record in client.list("endpoints"):
                client.delete("endpoints", record["name"])
            wait_until(lambda: not client.list("endpoints"), 60, what="endpoints deleted")


def apply(client: Client, **fields: Any) -> None:
    client.apply(Endpoint(**fields))


def state(client: Client, name: str) -> dict[str, Any]:
    return dict(client.get("endpoints", name)["status"])


def in_service(client: Client, name: str, ready: int = 1) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = state(client, name)
        count = sum(1 for v in status.get("variants", {}).values() for r in v["replicas"] if r["state"] == "Ready")
        return status if status["state"] == "InService" and count >= ready else None

    return wait_until(check, 90, interval=0.1, what=f"endpoint {name} in service with {ready} ready replicas")


def invoke(url: str, name: str, body: Any, content_type: str = "application/json") -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{url}/endpoints/{name}/invocations", content=data, headers={"content-type": content_type}, timeout=60
    )


SPLIT = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}


def test_endpoint_answers_both_protocols_and_explains_bad_payloads(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"])}], limits={"max_payload": "64Ki"})
    in_service(client, "iris")
    url = client.url

    answer = invoke(url, "iris", SPLIT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [0, 2]
    assert answer.headers["x-strato-variant"] == "default"
    csv = invoke(url, "iris", b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv")
    assert csv.status_code == 200 and csv.json()["predictions"] == [0, 2]
    v2 = httpx.post(
        f"{url}/v2/models/iris/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}]},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [2]
    assert httpx.get(f"{url}/v2/models/iris/ready").status_code == 200
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200

    short = invoke(url, "iris", {"dataframe_split": {"columns": COLUMNS[:3], "data": [[5.1, 3.5, 1.4]]}})
    assert short.status_code == 400 and "petal_width" in short.json()["error"]["message"]
    malformed = invoke(url, "iris", b'{"dataframe_split": ')
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]["message"]
    wrong_type = invoke(url, "iris", {"dataframe_records": [dict(zip(COLUMNS, ["abc", 1, 1, 1], strict=True))]})
    assert wrong_type.status_code == 400 and "sepal_length" in wrong_type.json()["error"]["message"]
    huge = invoke(url, "iris", b"1,2,3,4\n" * 20_000, "text/csv")
    assert huge.status_code == 413 and "limit" in huge.json()["error"]["message"]
    missing = invoke(url, "nope", SPLIT)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert invoke(url, "iris", SPLIT).status_code == 200  # the replica is still up after all of that


def test_tritonclient_talks_to_an_endpoint_unmodified(plane: tuple[Settings, Client], models: dict[str, Path]) -> None:
    http = pytest.importorskip("tritonclient.http")
    _, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"])}])
    in_service(client, "iris")
    triton = http.InferenceServerClient(url=client.url.removeprefix("http://"))
    assert triton.is_server_live() and triton.is_model_ready("iris")
    tensor = http.InferInput("input-0", [2, 4], "FP64")
    tensor.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]))
    result = triton.infer("iris", [tensor])
    output = result.get_response()["outputs"][0]["name"]
    assert result.as_numpy(output).tolist() == [0, 2]


def _load(url: str, name: str, stop: threading.Event, seen: list[tuple[int, Any]]) -> None:
    with httpx.Client(timeout=60) as http:
        while not stop.is_set():
            response = http.post(f"{url}/endpoints/{name}/invocations", json=SPLIT)
            seen.append(
                (
                    response.status_code,
                    response.json().get("predictions") if response.status_code == 200 else response.text,
                )
            )


def test_replica_killed_under_load_fails_no_request_and_is_replaced(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    settings, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"]), "replicas": {"min": 2}}])
    status = in_service(client, "iris", ready=2)
    victim = status["variants"]["default"]["replicas"][0]
    stop, seen = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(client.url, "iris", stop, seen)) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        wait_until(lambda: len(seen) > 50, 30, what="load running")
        pid = json.loads((settings.home / "runs" / victim["task_id"] / "pid.json").read_text())["pid"]
        os.killpg(pid, signal.SIGKILL)
        wait_until(
            lambda: victim["id"] not in {r["id"] for r in state(client, "iris")["variants"]["default"]["replicas"]},
            30,
            what="the dead replica dropped",
        )
        in_service(client, "iris", ready=2)
        count = len(seen)
        wait_until(lambda: len(seen) > count + 50, 30, what="load after the replacement")
    finally:
        stop.set()
        for w in workers:
            w.join()
    failures = [s for s in seen if s[0] != 200]
    assert not failures, failures[:3]


def test_model_update_under_load_drops_nothing_and_switches(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"])}])
    in_service(client, "iris")
    stop, seen = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(client.url, "iris", stop, seen)) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        wait_until(lambda: len(seen) > 30, 30, what="load running")
        apply(client, name="iris", variants=[{"model": str(models["constant"])}])
        wait_until(lambda: seen and seen[-1][1] == [2, 2], 90, what="answers from the new model")
        count = len(seen)
        wait_until(lambda: len(seen) > count + 30, 30, what="load after the switch")
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert all(code == 200 for code, _ in seen), [s for s in seen if s[0] != 200][:3]
    answers = [tuple(p) for _, p in seen]
    switch = answers.index((2, 2))
    assert set(answers[:switch]) == {(0, 2)} and set(answers[switch + 10 :]) == {(2, 2)}  # one switch, no flapping
    in_service(client, "iris")
    replicas = state(client, "iris")["variants"]["default"]["replicas"]
    assert [r["model"] for r in replicas] == [str(models["constant"])]  # the old replica was stopped


def test_model_that_fails_to_load_is_reported_and_the_old_one_keeps_serving(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    apply(client, name="bad", variants=[{"model": str(models["broken"])}])
    failed = wait_until(lambda: (s := state(client, "bad"))["state"] == "Failed" and s, 120, what="Failed")
    assert "cannot load model" in failed["message"] and "no_such_module_anywhere" in failed["message"]

    apply(client, name="iris", variants=[{"model": str(models["logistic"])}])
    in_service(client, "iris")
    apply(client, name="iris", variants=[{"model": str(models["broken"])}])
    updating = wait_until(
        lambda: (s := state(client, "iris"))["state"] == "Updating" and "cannot load" in s["message"] and s,
        120,
        what="the failed update reported",
    )
    assert updating["variants"]["default"]["failures"] >= 3
    answer = invoke(client.url, "iris", SPLIT)
    assert answer.status_code == 200 and answer.json()["predictions"] == [0, 2]


def test_scale_to_zero_then_a_request_is_held_until_a_replica_starts(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    variants = [{"model": str(models["logistic"]), "replicas": {"min": 0, "max": 1}}]
    apply(client, name="iris", variants=variants, autoscaling={"idle_timeout": "10m"})
    in_service(client, "iris")  # min 0 starts with one replica: the first request after a deploy does not wait
    assert invoke(client.url, "iris", SPLIT).status_code == 200
    apply(client, name="iris", variants=variants, autoscaling={"idle_timeout": "1s", "downscale_delay": 0})
    wait_until(lambda: not state(client, "iris")["variants"]["default"]["replicas"], 60, what="scaled to zero")
    assert "scaled to zero" in state(client, "iris")["message"]

    answer = invoke(client.url, "iris", SPLIT)  # held while a replica starts, then answered
    assert answer.status_code == 200 and answer.json()["predictions"] == [0, 2]
    decisions = state(client, "iris")["decisions"]
    assert decisions[-1]["desired"] == 1 and decisions[-1]["inputs"]["queued"] >= 1


def test_a_model_that_raises_answers_that_request_and_keeps_serving(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    apply(client, name="picky", variants=[{"model": str(models["picky"])}])
    in_service(client, "picky")
    bad = invoke(client.url, "picky", {"dataframe_split": {"columns": COLUMNS, "data": [[-1.0, 3.0, 5.2, 2.3]]}})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "the model rejected the input: ValueError: sepal_length cannot be negative"
    good = invoke(client.url, "picky", SPLIT)
    assert good.status_code == 200 and good.json()["predictions"] == [1, 1]

    metrics = httpx.get(f"{client.url}/metrics").text
    assert 'strato_endpoint_requests_total{endpoint="picky",variant="default"} 2.0' in metrics
    assert 'strato_endpoint_replicas{endpoint="picky",variant="default"} 1.0' in metrics
    assert 'strato_endpoint_request_seconds_count{endpoint="picky",variant="default"} 2.0' in metrics
    assert 'strato_endpoint_cold_starts_total{endpoint="picky",variant="default"} 1.0' in metrics


def test_shadow_gets_copies_whose_answers_are_compared_never_returned(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    _, client = plane
    apply(
        client, name="iris", variants=[{"model": str(models["logistic"])}],
        shadow={"model": str(models["constant"]), "sample_percent": 100},
    )  # fmt: skip
    in_service(client, "iris")
    wait_until(lambda: any(r["state"] == "Ready" for r in state(client, "iris")["variants"]["shadow"]["replicas"]), 60)
    wait_until(lambda: client.get("endpoints", "iris") and _shadow_routed(client), 30, what="shadow routed")
    answers = [invoke(client.url, "iris", SPLIT).json()["predictions"] for _ in range(20)]
    assert answers == [[0, 2]] * 20  # production answers only; the shadow's would be [2, 2]
    compared = wait_until(lambda: (c := state(client, "iris")["shadow_comparison"]) and c["compared"] >= 20 and c, 30)
    assert compared["agreed"] == 0  # the shadow always disagrees with production here


def _shadow_routed(client: Client) -> bool:
    metrics = httpx.get(f"{client.url}/metrics").text
    return 'strato_endpoint_replicas{endpoint="iris",variant="shadow"} 1.0' in metrics


def test_data_capture_lands_in_a_delta_table_off_the_request_path(
    plane: tuple[Settings, Client], models: dict[str, Path]
) -> None:
    from deltalake import DeltaTable

    settings, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"])}], data_capture={"enabled": True})
    in_service(client, "iris")
    for _ in range(5):
        assert invoke(client.url, "iris", SPLIT).status_code == 200
    assert invoke(client.url, "iris", b"1,2,3\n", "text/csv").status_code == 400
    table = settings.home / "lake" / "endpoint-iris-capture"
    rows = wait_until(
        lambda: (
            (table / "_delta_log").is_dir() and (t := DeltaTable(str(table)).to_pyarrow_table()).num_rows >= 6 and t
        ),
        30,
        what="captured rows",
    )
    frame = rows.to_pandas().sort_values("at")
    assert list(frame["status"]) == [200] * 5 + [400]
    assert set(frame["endpoint"]) == {"iris"} and set(frame["variant"]) == {"default"}
    assert json.loads(frame["request"].iloc[0]) == SPLIT and json.loads(frame["response"].iloc[0]) == {
        "predictions": [0, 2]
    }
    assert frame["request_content_type"].iloc[-1] == "text/csv" and (frame["latency_ms"] > 0).all()


def test_a_slow_client_does_not_hold_up_others(plane: tuple[Settings, Client], models: dict[str, Path]) -> None:
    import socket
    from urllib.parse import urlsplit

    _, client = plane
    apply(client, name="iris", variants=[{"model": str(models["logistic"])}])
    in_service(client, "iris")
    address = urlsplit(client.url)
    slow = socket.create_connection((address.hostname, address.port))
    try:  # headers and a tenth of the body, then nothing: the router is waiting for the rest
        body = json.dumps(SPLIT).encode()
        head = "POST /endpoints/iris/invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        slow.sendall(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 10])
        answers = [invoke(client.url, "iris", SPLIT) for _ in range(20)]  # meanwhile, others are answered
        assert [a.status_code for a in answers] == [200] * 20
        slow.sendall(body[len(body) // 10 :])  # the slow one finishes and is answered too
        slow.settimeout(30)
        reply = b""
        while b"]}" not in reply and (chunk := slow.recv(65536)):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and b'"predictions":[0,2]' in reply.replace(b" ", b"")
    finally:
        slow.close()
