"""``POST /api/v1/features/online`` as bare ASGI middleware: an online feature read is a ~50 us store
lookup, so FastAPI's per-request machinery (middleware stack, dependencies run in a thread pool, body
model validation) would cost several times the read itself. The request is checked here by hand with
the same rules and errors as the rest of the API.
"""

from __future__ import annotations

import json
from typing import Any

from strato.errors import InvalidArgument, StratoError
from strato.features.service import FeatureStoreService
from strato.server.auth import check_token

PATH = "/api/v1/features/online"
FIELDS = {"features", "feature_service", "entities", "entity_rows", "full_feature_names", "with_status"}
_HEADERS = [(b"content-type", b"application/json")]


def _error(exc: StratoError) -> tuple[int, bytes]:
    return exc.http_status, json.dumps({"error": exc.to_dict()}).encode()


def answer(features: FeatureStoreService, body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise InvalidArgument(f"the request body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidArgument("the request body must be a JSON object")
    unknown = sorted(set(request) - FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    wanted = request.get("feature_service") or request.get("features")
    if not wanted or (request.get("features") and request.get("feature_service")):
        raise InvalidArgument("give either features (a list of VIEW:FEATURE) or feature_service")
    rows = request.get("entities") if request.get("entities") is not None else request.get("entity_rows")
    if not isinstance(rows, dict | list):
        raise InvalidArgument("give entities ({join_key: [values]}) or entity_rows ([{join_key: value}])")
    return features.online.get(
        rows,
        wanted,
        full_feature_names=bool(request.get("full_feature_names")),
        with_status=bool(request.get("with_status")),
    )


class OnlineFeaturesRoute:
    def __init__(self, app: Any, *, features: FeatureStoreService, token: str, token_required: bool, token_path: Any):
        self.app, self.features = app, features
        self.token, self.token_required, self.token_path = token, token_required, token_path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            check_token(header, self.token, required=self.token_required, token_path=self.token_path)
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            # In the event loop on purpose: the read is shorter than a hand-off to a thread.
            status, payload = 200, json.dumps(answer(self.features, b"".join(chunks))).encode()
        except StratoError as exc:
            status, payload = _error(exc)
        await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": payload})
