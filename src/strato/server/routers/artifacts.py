"""Upload and download of artifacts (code snapshots, input snapshots) by store-relative path.
Paths are checked by ``safe_path``: nothing can escape the store."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from strato.server.deps import platform
from strato.server.platform import Platform
from strato.store.artifacts import safe_path

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])


@router.put("/{path:path}", status_code=201)
async def upload(path: str, request: Request, p: Platform = Depends(platform)) -> dict[str, str]:
    key = safe_path(path)
    data = await request.body()
    return {"uri": p.artifacts.put_bytes(key, data), "path": key}


@router.head("/{path:path}")
def exists(path: str, p: Platform = Depends(platform)) -> Response:
    key = safe_path(path)
    return Response(status_code=200 if p.artifacts.exists(key) else 404)


@router.get("/{path:path}")
def download(path: str, p: Platform = Depends(platform)) -> Response:
    key = safe_path(path)
    return Response(p.artifacts.get_bytes(key), media_type="application/octet-stream")
