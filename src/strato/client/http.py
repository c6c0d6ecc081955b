"""The one place the SDK speaks HTTP: errors come back as the server's ``StratoError``s, an unreachable
server as one line that says how to start it."""

from __future__ import annotations

from typing import Any

import httpx

from strato.errors import StratoError, Unavailable


class Transport:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise Unavailable(
                f"cannot reach the Strato control plane at {self.url} (connection refused); "
                "start it with `strato up` or set STRATO_URL"
            ) from None
        except httpx.TimeoutException:
            raise Unavailable(f"the Strato control plane at {self.url} did not answer in time") from None
        if response.status_code >= 400 and method != "HEAD":
            raise _error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def close(self) -> None:
        self._http.close()


def _error(response: httpx.Response) -> StratoError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return StratoError.from_dict(body["error"])
    return StratoError(f"the control plane answered {response.status_code}: {response.text[:200]}")
