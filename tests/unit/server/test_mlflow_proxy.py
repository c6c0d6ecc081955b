"""The /mlflow layer's own decisions, before anything is forwarded: the token (bearer for MLflow's
client, basic auth's password for a browser), and what it answers when tracking is off. Forwarding
itself is tested against the real MLflow server (tests/integration/test_tracking.py)."""

from __future__ import annotations

import asyncio
import base64

import httpx

from strato.server.mlflow_proxy import MlflowProxy


async def _inner(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"api"})  # type: ignore[operator]


def _get(path: str, *, required: bool = True, **headers: str) -> httpx.Response:
    proxy = MlflowProxy(_inner, tracking=None, token="s3cret", token_required=required, token_hint="/home/token")

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://strato") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(call())


def test_other_paths_go_to_the_api() -> None:
    assert _get("/api/v1/jobs").text == "api"
    assert _get("/mlflowish").text == "api"  # only /mlflow and below are MLflow's


def test_a_missing_token_is_refused_with_what_to_set() -> None:
    response = _get("/mlflow/api/2.0/mlflow/experiments/search")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Strato MLflow"'  # a browser asks for it
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in body["message"] and "/home/token" in body["message"]


def test_a_wrong_token_is_refused() -> None:
    response = _get("/mlflow/", Authorization="Bearer nope")
    assert response.status_code == 401
    assert response.json()["message"].startswith("wrong API token for /mlflow")


def test_bearer_or_basic_password_passes() -> None:
    basic = base64.b64encode(b"anyone:s3cret").decode()
    for header in ("Bearer s3cret", f"Basic {basic}"):
        response = _get("/mlflow/", Authorization=header)
        assert response.status_code == 404  # past the token: tracking is off in this workspace
        assert "tracking is off" in response.json()["message"]


def test_loopback_servers_need_no_token_but_check_one_that_is_sent() -> None:
    assert _get("/mlflow/", required=False).status_code == 404
    assert _get("/mlflow/", required=False, Authorization="Bearer nope").status_code == 401
