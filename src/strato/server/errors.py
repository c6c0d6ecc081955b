"""Every error leaves the API in one shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from strato.errors import ErrorCode, StratoError

log = logging.getLogger("strato.server")


def error_response(error: StratoError) -> JSONResponse:
    return JSONResponse({"error": error.to_dict()}, status_code=error.http_status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StratoError)
    async def _strato(_: Request, exc: StratoError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_response(StratoError(f"invalid request: {problems}", code=ErrorCode.INVALID_ARGUMENT))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return error_response(
            StratoError(
                f"internal error (id {error_id}); the server log has the details",
                code=ErrorCode.INTERNAL,
                details={"error_id": error_id},
            )
        )
