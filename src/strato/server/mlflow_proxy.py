"""``/mlflow``: the managed MLflow server behind the control plane's address and token, so users have
one URL and one credential (``MLFLOW_TRACKING_URI=http://<strato>/mlflow``, ``MLFLOW_TRACKING_TOKEN``).

A plain ASGI middleware in front of the API: requests under ``/mlflow`` never enter FastAPI's routing,
small bodies are forwarded in one piece and large ones (artifacts) streamed both ways, over a pool of
kept-alive connections. The MLflow server runs with ``--static-prefix /mlflow``, so paths go through
unchanged and the UI works. The token is a bearer token (MLflow's client sends
``MLFLOW_TRACKING_TOKEN`` that way) or the password of HTTP basic auth (so a browser can ask for it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.server.upstream import UpstreamError, UpstreamPool
from strato.tracking.server import PREFIX, TrackingServer

HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"authorization",
}  # fmt: skip
BUFFER_LIMIT = 1024 * 1024  # request bodies up to this size are forwarded in one piece
HOLD = 90.0  # seconds a request waits for a (re)starting MLflow server before a 503
RETRY_AFTER = "5"


class MlflowProxy:
    def __init__(
        self, app: ASGIApp, *, tracking: TrackingServer | None, token: str, token_required: bool, token_hint: str
    ):
        self.app = app
        self.tracking = tracking
        self.token = token
        self.token_required = token_required
        self.token_hint = token_hint
        self._pools: dict[str, UpstreamPool] = {}

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
        base = await self._upstream()
        if base is None:
            message = f"the MLflow tracking server is not ready after {HOLD:g}s (starting or restarting); retry"
            await _reply(send, 503, message, [(b"retry-after", RETRY_AFTER.encode())])
            return
        await self._forward(base, scope, receive, send, headers)

    async def _upstream(self) -> str | None:
        """The server's address; while it (re)starts, the request is held rather than refused, so a
        client logging through a restart is only slowed down (MLflow's own retries are short)."""
        assert self.tracking is not None
        deadline = asyncio.get_running_loop().time() + HOLD
        while not self.tracking.ready or self.tracking.base_url is None:
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.1)
        return self.tracking.base_url

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()

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

    def _pool(self, base: str) -> UpstreamPool:
        pool = self._pools.get(base)
        if pool is None:
            for old in self._pools.values():  # the server restarted on another port
                old.close()
            host, _, port = base.removeprefix("http://").partition(":")
            pool = self._pools[base] = UpstreamPool(host, int(port))
        return pool

    async def _forward(
        self, base: str, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = path + (b"?" + query if query else b"")
        out = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k != b"content-length"]
        client_addr = scope.get("client")
        if client_addr:
            out.append((b"x-forwarded-for", client_addr[0].encode()))
        raw_length = headers.get(b"content-length")
        length = int(raw_length) if raw_length is not None else None
        content: bytes | AsyncIterator[bytes]
        if length is not None and length <= BUFFER_LIMIT:
            content = await _read_body(receive)
        elif length is None and b"transfer-encoding" not in headers:
            content = b""
        else:
            content = _stream_body(receive)
        try:
            try:
                response = await self._pool(base).request(scope["method"], target, out, content, length=length)
            except UpstreamError as exc:  # it died before the supervisor noticed: resend once it is back
                if exc.sent or not isinstance(content, bytes) or (again := await self._upstream()) is None:
                    raise
                response = await self._pool(again).request(scope["method"], target, out, content, length=length)
        except UpstreamError as exc:
            message = f"the MLflow tracking server did not answer ({exc}); it is being restarted, retry"
            await _reply(send, 503, message, [(b"retry-after", RETRY_AFTER.encode())])
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(k, v) for k, v in response.headers if k not in HOP_BY_HOP],
                }
            )
            async for chunk in response.body():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            response.close()


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
