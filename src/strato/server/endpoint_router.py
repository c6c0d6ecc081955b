"""The endpoint router: ASGI middleware in front of the control plane's app that sends each inference
request to a replica, without FastAPI's routing in the way (the router's cost is paid per prediction).

``POST /endpoints/{name}/invocations`` and the Open Inference Protocol v2 (``/v2/models/{name}/infer``,
``/v2/models/{name}[/ready]``, ``/v2/health/live|ready``) at the root, where Triton's and KServe's
clients look. Per request: pick a variant by weight and a replica by the power of two choices
(``serving/routes.py``); forward over a kept-alive connection; retry on another replica when one died;
answer 429 with ``Retry-After`` when every replica is at its in-flight limit (pushing back instead of
queueing without bound); 504 past the endpoint's timeout; 413 past its payload limit. An endpoint with
no replica up (scaled to zero, or still starting) holds the request while one starts, up to the
timeout, instead of failing it. Sampled requests are copied to the shadow model off the request path.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from strato.errors import StratoError
from strato.features.lookup import lookup
from strato.features.service import FeatureStoreService
from strato.server.upstream import UpstreamError, UpstreamPool
from strato.serving.capture import CaptureRecord
from strato.serving.routes import EndpointRoutes, ReplicaRoute, RouteTable

Scope = dict[str, Any]
HOLD_POLL = 0.02  # seconds between looks for a replica while a request is held
RETRIES = 2  # other replicas tried after one fails to answer
FORWARDED = (b"content-type", b"accept", b"inference-header-content-length")


def _json(status: int, code: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    return status, [(b"content-type", b"application/json")], body


def _usable(routes: EndpointRoutes) -> bool:
    """A replica the router may try: ready and not found dead (a replica leaving the table during a
    rollout is marked dead a moment before the new table is published)."""
    return any(not r.broken for replicas in routes.replicas.values() for r in replicas)


def _v2_error(body: bytes) -> bytes:
    """The v2 protocol's errors are ``{"error": "<message>"}``: Triton's and KServe's clients read a string."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body
    return json.dumps({"error": error["message"]}).encode() if isinstance(error, dict) else body


def _parse(path: str) -> tuple[str, str] | None:
    """(endpoint name, replica path) for an inference route, else None."""
    if path.startswith("/endpoints/"):
        parts = path.split("/")
        if len(parts) == 4 and parts[3] == "invocations":
            return parts[2], "/invocations"
        return None
    if path.startswith("/v2/models/"):
        parts = path.split("/")
        if len(parts) >= 4:
            return parts[3], path
    return None


class EndpointRouter:
    def __init__(
        self, app: Any, *, routes: RouteTable, token: str, token_required: bool, features: FeatureStoreService
    ):
        self.app, self.table, self.token, self.token_required = app, routes, token, token_required
        self.features = features

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in ("/v2/health/live", "/v2/health/ready", "/v2"):
            await self._send(send, 200, [(b"content-type", b"application/json")], b"{}")
            return
        target = _parse(path)
        if target is None:
            await self.app(scope, receive, send)
            return
        if self.token_required and not self._authorized(scope):
            await self._send(
                send, *_json(401, "UNAUTHENTICATED", "send the Strato token as 'Authorization: Bearer ...'")
            )
            return
        status, headers, body = await self._serve(scope, receive, *target)
        if status >= 400 and path.startswith("/v2/"):
            body = _v2_error(body)
        await self._send(send, status, headers, body)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return bool(value.decode("latin-1").removeprefix("Bearer ").strip() == self.token)
        return False

    async def _serve(
        self, scope: Scope, receive: Any, name: str, target: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        routes = self.table.get(name)
        if routes is None:
            return _json(404, "NOT_FOUND", f"no endpoint {name!r} (see `strato get endpoints`)")
        try:
            body = await self._body(receive, routes.max_payload)
        except OverflowError:
            return _json(
                413,
                "PAYLOAD_TOO_LARGE",
                f"the request body is over endpoint {name!r}'s limit of {routes.max_payload} bytes",
            )
        headers = [(k, v) for k, v in scope["headers"] if k in FORWARDED]
        if routes.feature_service and target.endswith("/invocations"):
            try:
                found = lookup(body, self.features.online, routes.feature_service)
            except StratoError as exc:
                return _json(exc.http_status, str(exc.code), exc.message)
            body = found.body
            headers = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length")]
            headers.append((b"content-type", b"application/json"))
            if routes.log_features:
                self.features.feature_log.offer(name, routes.feature_service, found.entities, found.features)
        self.table.touch(name)
        try:
            return await asyncio.wait_for(self._forward(name, scope["method"], target, headers, body), routes.timeout)
        except TimeoutError:
            return _json(504, "TIMEOUT", f"endpoint {name!r} did not answer within {routes.timeout:g}s")

    async def _body(self, receive: Any, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise OverflowError
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _forward(
        self, name: str, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        tried: set[int] = set()
        failure = ""
        while len(tried) <= RETRIES:
            routes = await self._ready_routes(name)
            if routes is None:
                return _json(404, "NOT_FOUND", f"endpoint {name!r} was deleted")
            replica = self.table.pick(routes, tried)
            if replica is None:
                if tried:
                    break
                self.table.variant_stats(name, "").rejected += 1
                status, head, payload = _json(
                    429, "UNAVAILABLE", f"every replica of endpoint {name!r} is busy; retry shortly"
                )
                return status, [*head, (b"retry-after", b"1")], payload
            started = time.perf_counter()
            replica.in_flight += 1
            try:
                status, head, payload = await self._exchange(replica, method, target, headers, body)
            except UpstreamError as exc:
                tried.add(id(replica))
                replica.broken = not exc.sent  # it refused the connection: gone, until the reconciler looks
                failure = str(exc)
                self.table.on_demand(name)
                continue
            finally:
                replica.in_flight -= 1
            elapsed = time.perf_counter() - started
            self.table.variant_stats(name, replica.variant).observe(elapsed, status >= 500)
            if routes.capture is not None:  # sampled and queued only: written off the request path
                kind = next((v.decode("latin-1") for k, v in headers if k == b"content-type"), None)
                routes.capture.offer(
                    CaptureRecord(
                        endpoint=name, variant=replica.variant, model_version=replica.version, at=time.time(),
                        latency_ms=elapsed * 1000, status=status, request=body, response=payload,
                        request_content_type=kind,
                    )
                )  # fmt: skip
            if routes.shadow and self.table.rng.random() < routes.shadow_share:
                asyncio.get_running_loop().create_task(
                    self._shadow(name, routes, method, target, headers, body, payload)
                )
            return status, [*head, (b"x-strato-variant", replica.variant.encode())], payload
        self.table.variant_stats(name, "").errors += 1
        return _json(503, "UNAVAILABLE", f"endpoint {name!r}: no replica could answer ({failure or 'all busy'})")

    async def _ready_routes(self, name: str) -> EndpointRoutes | None:
        """The endpoint's routes once a replica is usable; meanwhile the request is held (and counted,
        so the autoscaler starts one from zero). The caller's timeout bounds the wait."""
        routes = self.table.get(name)
        if routes is None or _usable(routes):
            return routes
        self.table.waiting[name] = self.table.waiting.get(name, 0) + 1
        try:
            self.table.on_demand(name)
            while routes is not None and not _usable(routes):
                await asyncio.sleep(HOLD_POLL)
                routes = self.table.get(name)
            return routes
        finally:
            self.table.waiting[name] -= 1

    async def _exchange(
        self, replica: ReplicaRoute, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if replica.pool is None:
            replica.pool = UpstreamPool(replica.host, replica.port, max_idle=256)
        response = await replica.pool.request(method, target.encode(), headers, body)
        try:
            payload = b"".join([chunk async for chunk in response.body()])
        finally:
            response.close()
        head = [(k, v) for k, v in response.headers if k == b"content-type"]
        return response.status, head, payload

    async def _shadow(
        self,
        name: str,
        routes: EndpointRoutes,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        production: bytes,
    ) -> None:
        """A copy to the shadow model: its answer is compared with production's and dropped."""
        replica = self.table.least_busy(routes, routes.shadow, set())
        if replica is None:
            return
        stats = self.table.variant_stats(name, "shadow")
        started = time.perf_counter()
        replica.in_flight += 1
        try:
            status, _, payload = await self._exchange(replica, method, target, headers, body)
        except (UpstreamError, TimeoutError):
            stats.observe(time.perf_counter() - started, True)
            return
        finally:
            replica.in_flight -= 1
        stats.observe(time.perf_counter() - started, status >= 500)
        self.table.shadow_agreement(name, status < 400 and payload == production)

    async def _send(self, send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
