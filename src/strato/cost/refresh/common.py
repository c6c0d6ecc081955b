"""What the price fetchers share: the fetch signature (injected, so tests never touch a network), JSON
decoding whose errors name the URL, the tally of rows kept and dropped, and small parsing helpers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strato.cost.offers import Offer
from strato.errors import Unavailable

# fetch(url, params, headers) -> the response body. Raises on a failed request.
Fetch = Callable[[str, dict[str, str] | None, dict[str, str] | None], bytes]

HTTP_TIMEOUT_S = 120.0  # per read, not per download: the AWS region offer files are hundreds of MB
MAX_PAGES = 2000  # far above any real price list; stops a server whose paging never ends


def http_fetch(url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> bytes:
    """The default fetch: one GET with httpx. Errors name the URL without its query (it may hold an API key)."""
    import httpx  # only a real refresh needs it

    try:
        response = httpx.get(
            url,
            params=params,
            headers=headers,
            timeout=httpx.Timeout(HTTP_TIMEOUT_S, connect=15.0),
            follow_redirects=True,
        )
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise Unavailable(
            f"GET {_without_query(url)} answered HTTP {exc.response.status_code}; try again later"
        ) from None
    except httpx.HTTPError as exc:
        raise Unavailable(
            f"GET {_without_query(url)} failed ({type(exc).__name__}); check the network and try again"
        ) from None
    return response.content


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def get_json(fetch: Fetch, url: str, params: dict[str, str] | None = None) -> Any:
    body = fetch(url, params, {"Accept": "application/json"})
    try:
        return json.loads(body)
    except ValueError:
        raise Unavailable(f"{_without_query(url)} did not return JSON; try again later") from None


def need(doc: Any, key: str, kind: type, where: str) -> Any:
    """``doc[key]`` when it is a ``kind``; otherwise say the response is not in the documented shape."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, kind):
        raise Unavailable(f"{where}: the response has no {key!r} {kind.__name__}; the API format may have changed")
    return value


@dataclass
class Parsed:
    """Offer rows a parser kept, and how many source rows it dropped, by reason."""

    offers: list[Offer] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def extend(self, other: Parsed) -> None:
        self.offers.extend(other.offers)
        self.skipped.update(other.skipped)


def quantity(text: Any) -> float | None:
    """'16 GiB' -> 16.0, '1,952 GiB' -> 1952.0, '4' -> 4.0; 'NA', '' or None -> None."""
    if text is None:
        return None
    token = str(text).replace(",", "").strip().split(" ")[0]
    try:
        return float(token)
    except ValueError:
        return None
