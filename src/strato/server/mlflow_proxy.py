"""``/mlflow``: the managed MLflow server behind the control plane's address and token, so users have
one URL and one credential (``MLFLOW_TRACKING_URI=http://<strato>/mlflow``, ``MLFLOW_TRACKING_TOKEN``).

A plain ASGI middleware in front of the API: requests under ``/mlflow`` never enter FastAPI's routing,
small bodies are forwarded in one piece and large ones (artifacts) streamed both ways, over a pool of
kept-alive connections. The MLflow server runs with ``--static-prefix /mlflow``, so paths go through
unchanged and the UI works. The token is a bearer token (MLflow's client sends
``MLFLOW_TRACKING_TOKEN`` that way) or the password of HTTP basic auth (so a browser can ask for it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.tracking.server import PREFIX, TrackingServer

HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"authorization",
}  # fmt: skip
BUFFER_LIMIT = 1024 * 1024  # request bodies up to this size are forwarded in one piece
RETRY_AFTER = "2"


class MlflowProxy:
    def __init__(
        self, app: ASGIApp, *, tracking: TrackingServer | None, token: str, token_required: bool, token_hint: str
    ):
        self.app = app
        self.tracking = tracking
        self.token = token
        self.token_required = token_required
        self.token_hint = token_hint
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._authenticate(headers.get(b"authorization"))
        if problem is not None:
            await _reply(send, 401, problem, [(b"www-authenticate", b'Basic realm="Strato MLflow"')])
            return
        if self.tracking is None:
            await _reply(send, 404, "experiment tracking is off in this workspace (setting tracking: false)")
            return
        base = self.tracking.base_url
        if base is None or not self.tracking.ready:
            message = "the MLflow tracking server is starting or restarting; retry shortly"
            await _reply(send, 503, message, [(b"retry-after", RETRY_AFTER.encode())])
            return
        await self._forward(base, scope, receive, send, headers)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    def _authenticate(self, header: bytes | None) -> str | None:
        if not header:
            if self.token_required:
                return (
                    "this Strato server requires an API token: set MLFLOW_TRACKING_TOKEN (or send "
                    f"'Authorization: Bearer <token>'); the token is in {self.token_hint} on the server"
                )
            return None
        scheme, _, value = header.decode("latin-1").partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                value = ""
        elif scheme.lower() != "bearer":
            value = ""
        if hmac.compare_digest(value.encode(), self.token.encode()):
            return None
        return f"wrong API token for /mlflow: use the token in {self.token_hint} on the server"

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0), limits=limits)
        return self._client

    async def _forward(
        self, base: str, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        query = scope.get("query_string", b"")
        url = base + scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        if query:
            url += "?" + query.decode("latin-1")
        out = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        client_addr = scope.get("client")
        if client_addr:
            out.append((b"x-forwarded-for", client_addr[0].encode()))
        length = headers.get(b"content-length")
        content: bytes | AsyncIterator[bytes]
        if length is not None and int(length) <= BUFFER_LIMIT:
            content = await _read_body(receive)
        elif length is None and b"transfer-encoding" not in headers:
            content = b""
        else:
            content = _stream_body(receive)
        request = self.client.build_request(scope["method"], url, headers=out, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            message = f"the MLflow tracking server did not answer ({type(exc).__name__}); it is being restarted, retry"
            await _reply(send, 503, message, [(b"retry-after", RETRY_AFTER.encode())])
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body"):
            return


async def _reply(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """An error in MLflow's own shape, so its client prints the message."""
    codes = {401: "UNAUTHENTICATED", 404: "ENDPOINT_NOT_FOUND", 503: "TEMPORARILY_UNAVAILABLE"}
    body: dict[str, Any] = {"error_code": codes.get(status, "INTERNAL_ERROR"), "message": message}
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})
