"""Request-scoped access to the platform and the auth check, shared by every router."""

from __future__ import annotations

from fastapi import Request

from strato.server.auth import check_token
from strato.server.platform import Platform


def platform(request: Request) -> Platform:
    return request.app.state.platform


def authenticate(request: Request) -> None:
    state = request.app.state
    check_token(
        request.headers.get("authorization"),
        state.token,
        required=state.token_required,
        token_path=state.platform.settings.token_path,
    )
