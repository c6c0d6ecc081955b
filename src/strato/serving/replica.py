"""One replica of an endpoint variant (``python -m strato.serving.replica``): loads the model once and
serves it over HTTP on loopback, behind the router. A bare ASGI app on uvicorn (httptools, uvloop):
the replica's own cost per request is what every prediction pays, so no framework sits in between.

Routes: ``POST /invocations`` (SageMaker style: JSON or CSV), the Open Inference Protocol v2
(``/v2/health/live|ready``, ``/v2/models/{name}[/ready]``, ``POST /v2/models/{name}/infer``) and
``GET /ping``. The model input is decoded and checked by ``serving/codec.py`` whatever the protocol.

Errors never take the replica down: a bad payload is a 400 naming what is wrong; a model that raises
``ValueError``/``TypeError``/``KeyError`` on an input is a 400 (that input is the problem), anything
else it raises a 500; both name the model's own message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from strato.errors import ErrorCode, PayloadTooLarge, StratoError
from strato.serving.codec import (
    concat_inputs,
    decode_invocation,
    decode_v2,
    encode_predictions,
    encode_v2,
    split_outputs,
)
from strato.serving.model import LoadedModel, cached_model_dir
from strato.serving.v2_binary import inline_binary

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
JSON = b"application/json"
INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


class ModelError(StratoError):
    """The model raised on an input: 400 when the input is the likely cause, else 500."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the endpoint's limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = JSON) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(exc: StratoError, *, v2: bool = False) -> bytes:
    # The v2 protocol's errors are {"error": "<message>"}: Triton's and KServe's clients read a string.
    return json.dumps({"error": exc.message if v2 else exc.to_dict()}).encode()


class ReplicaApp:
    def __init__(
        self,
        model: LoadedModel,
        *,
        name: str,
        version: str | None = None,
        max_payload: int = 6 * 1024**2,
        batching: dict[str, Any] | None = None,
    ):
        self.model, self.name, self.version, self.max_payload = model, name, version, max_payload
        self.batcher: Any = None
        if batching and batching.get("enabled"):
            from strato.serving.batching import AdaptiveBatcher

            self.batcher = AdaptiveBatcher(
                self._predict_batch,
                max_batch_size=int(batching.get("max_batch_size", 32)),
                max_wait=float(batching.get("max_wait", 0.01)),
            )
        self.requests = 0

    def _predict_batch(self, inputs: list[Any]) -> list[Any]:
        if len(inputs) == 1:
            return [self.model.predict(inputs[0])]
        return list(split_outputs(self.model.predict(concat_inputs(inputs)), [len(x) for x in inputs]))

    async def predict(self, data: Any) -> Any:
        try:
            if self.batcher is not None:
                return await self.batcher.submit(data, len(data))
            return self.model.predict(data)
        except StratoError:
            raise
        except INPUT_ERRORS as exc:
            raise ModelError(
                f"the model rejected the input: {type(exc).__name__}: {exc}", code=ErrorCode.INVALID_ARGUMENT
            ) from None
        except Exception as exc:
            raise ModelError(f"the model failed: {type(exc).__name__}: {exc}", code=ErrorCode.INTERNAL) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.requests += 1
        try:
            await self._route(scope, receive, send)
        except StratoError as exc:
            await _respond(send, exc.http_status, _error_body(exc, v2=scope["path"].startswith("/v2/")))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.batcher is not None:
                    await self.batcher.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/invocations":
            body = await _body(receive, self.max_payload)
            data = decode_invocation(body, _header(scope, b"content-type"), self.model.schema)
            predictions = await self.predict(data)
            out, content_type = encode_predictions(predictions, _header(scope, b"accept"))
            await _respond(send, 200, out, content_type.encode())
        elif method == "POST" and path.startswith("/v2/models/") and path.endswith("/infer"):
            body = await _body(receive, self.max_payload)
            header = _header(scope, b"inference-header-content-length")
            if header is not None:
                body = inline_binary(body, int(header) if header.isdigit() else -1)
            data, meta = decode_v2(body, self.model.schema)
            predictions = await self.predict(data)
            out = encode_v2(predictions, model_name=self.name, model_version=self.version, request_id=meta.get("id"))
            await _respond(send, 200, out)
        elif method == "GET" and path == "/stats":
            await _respond(send, 200, json.dumps(self.stats()).encode())
        elif method == "GET" and path in ("/ping", "/v2/health/live", "/v2/health/ready"):
            await _respond(send, 200, b"{}")
        elif method == "GET" and path.startswith("/v2/models/"):
            await _respond(send, 200, self._metadata(path.endswith("/ready")))
        else:
            await _respond(
                send, 404, json.dumps({"error": {"code": "NOT_FOUND", "message": f"no route {path}"}}).encode()
            )

    def stats(self) -> dict[str, Any]:
        batching = dict(self.batcher.stats) if self.batcher is not None else {}
        return {"requests": self.requests, "mean_batch_size": batching.get("mean_batch_rows"), "batching": batching}

    def _metadata(self, ready: bool) -> bytes:
        if ready:
            return json.dumps({"name": self.name, "ready": True}).encode()
        schema = self.model.schema
        inputs = [{"name": c, "datatype": "FP64", "shape": [-1]} for c in (schema.columns or ())] if schema else []
        versions = [self.version] if self.version else []
        return json.dumps({"name": self.name, "versions": versions, "platform": "mlflow", "inputs": inputs}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one MLflow model (a replica of an endpoint variant).")
    parser.add_argument("--model", required=True, help="models:/ or runs:/ URI, or a local MLflow model directory")
    parser.add_argument("--name", required=True, help="the endpoint's name (the v2 model name)")
    parser.add_argument("--version", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "strato" / "models")
    parser.add_argument("--max-payload", type=int, default=6 * 1024**2)
    parser.add_argument("--batching", default="{}", help="JSON: enabled, max_batch_size, max_wait")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        model = LoadedModel.load(cached_model_dir(args.model, args.cache), args.model)
    except Exception as exc:  # the reason goes to the log, where the reconciler reads it
        print(f"[strato] failure-reason {json.dumps(f'cannot load model {args.model}: {type(exc).__name__}: {exc}')}")
        return 3
    app = ReplicaApp(
        model, name=args.name, version=args.version, max_payload=args.max_payload, batching=json.loads(args.batching)
    )
    print(
        f"[strato] model loaded in {time.perf_counter() - started:.2f}s; serving on {args.host}:{args.port}", flush=True
    )
    import uvicorn

    config = uvicorn.Config(
        app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning",
        access_log=False, lifespan="on", timeout_keep_alive=300, backlog=2048,
    )  # fmt: skip
    asyncio.run(uvicorn.Server(config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
