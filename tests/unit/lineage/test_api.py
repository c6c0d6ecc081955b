"""The lineage route, the SDK's ``client.lineage`` and ``strato lineage`` over one in-process app (the
route's real router and error handlers; the platform reduced to its store)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from strato.client import Client
from strato.errors import ErrorCode, InvalidArgument, StratoError
from strato.lineage.graph import Lineage
from strato.lineage.model import LineageGraph
from strato.server.errors import install_error_handlers
from strato.server.routers import lineage as lineage_router

with warnings.catch_warnings():  # starlette's note about httpx, at import: not about these tests
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def app(pipeline: Lineage) -> FastAPI:
    app = FastAPI()
    app.state.platform = SimpleNamespace(store=pipeline.store)
    install_error_handlers(app)
    app.include_router(lineage_router.router)
    return app


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def sdk(app: FastAPI) -> Callable[[], Client]:
    """A new SDK client each call (a CLI command closes the one it used), speaking to ``app``."""

    def make() -> Client:
        client = Client("http://testserver")
        client.transport._http = TestClient(app)  # the same requests, without a socket
        return client

    return make


def test_route_answers_the_graph(http: TestClient, pipeline: Lineage) -> None:
    response = http.get("/api/v1/lineage/job/iris", params={"direction": "upstream", "depth": 1})
    assert response.status_code == 200
    body = response.json()
    assert body == pipeline.graph("job", "iris", "upstream", 1).to_dict()
    assert body["root"] == "job:uid-iris-1" and body["direction"] == "upstream" and body["depth"] == 1
    assert {e["relation"] for e in body["edges"]} == {"input_of", "code_of"}


def test_route_takes_names_with_slashes(http: TestClient) -> None:
    body = http.get("/api/v1/lineage/model_version/iris%2F1", params={"direction": "upstream"}).json()
    assert body["root"] == "model_version:iris/1" and len(body["nodes"]) == 6
    body = http.get("/api/v1/lineage/dataset/s3%3A%2F%2Fbucket%2Ftrain").json()
    assert body["root"] == "dataset:s3://bucket/train@aaaaaaaaaaaaaaaa"


def test_route_errors_have_the_api_shape(http: TestClient) -> None:
    response = http.get("/api/v1/lineage/job/irsi")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["message"].startswith("no job named 'irsi' in the lineage; did you mean 'iris'?")
    assert http.get("/api/v1/lineage/jbo/iris").json()["error"]["message"].startswith("unknown lineage kind 'jbo'")
    bad = http.get("/api/v1/lineage/job/iris", params={"direction": "sideways"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("invalid request: query.direction")
    assert http.get("/api/v1/lineage/job/iris", params={"depth": -1}).status_code == 400


def test_sdk_returns_a_graph(sdk: Callable[[], Client], pipeline: Lineage) -> None:
    with sdk() as client:
        graph = client.lineage.get("dataset", "s3://bucket/train", direction="downstream", depth=2)
        assert isinstance(graph, LineageGraph)
        assert graph == pipeline.graph("dataset", "s3://bucket/train", "downstream", 2)
        assert graph.truncated
        assert client.lineage.get("model_version", "iris/1").root == "model_version:iris/1"
        with pytest.raises(StratoError, match="no job named 'nope' in the lineage") as info:
            client.lineage.get("job", "nope")
        assert info.value.code is ErrorCode.NOT_FOUND
        with pytest.raises(InvalidArgument, match="unknown lineage direction 'up'"):
            client.lineage.get("job", "iris", direction="up")


def run_cli(sdk: Callable[[], Client], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    from strato.cli import lineage as lineage_cli
    from strato.cli.main import app

    monkeypatch.setattr(lineage_cli, "client", lambda *_: sdk())
    result = CliRunner().invoke(app, ["lineage", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_formats(sdk: Callable[[], Client], monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(run_cli(sdk, monkeypatch, "job", "iris", "--upstream", "-o", "json"))
    assert data["direction"] == "upstream" and len(data["edges"]) == 3
    data = json.loads(run_cli(sdk, monkeypatch, "job", "iris", "--downstream", "--depth", "1", "-o", "json"))
    assert data["direction"] == "downstream" and data["depth"] == 1 and data["truncated"]
    data = json.loads(run_cli(sdk, monkeypatch, "job", "iris", "--upstream", "--downstream", "-o", "json"))
    assert data["direction"] == "both"
    dot = run_cli(sdk, monkeypatch, "jobs", "iris", "-o", "dot")
    assert dot.startswith("digraph lineage {") and dot.count(" -> ") == 6
    tree = run_cli(sdk, monkeypatch, "job", "iris")
    assert "upstream: what it came from" in tree and "deployed_to" in tree
