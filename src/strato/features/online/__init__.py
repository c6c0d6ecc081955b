"""Online stores: the latest feature values per entity, for low-latency reads. SQLite by default
(``sqlite:///path/online.db``), Redis for teams (``redis://host:port/db?prefix=name``); chosen by URL scheme.
"""

from __future__ import annotations

from collections.abc import Callable

from strato._registry import Registry
from strato.features.online.base import OnlineStore, entity_key

__all__ = ["ONLINE_STORES", "OnlineStore", "entity_key", "open_online_store"]

ONLINE_STORES: Registry[Callable[[str], OnlineStore]] = Registry("online store scheme")


@ONLINE_STORES.register("sqlite")
def _sqlite(url: str) -> OnlineStore:
    from strato.features.online.sqlite import SqliteOnlineStore

    return SqliteOnlineStore(url)


@ONLINE_STORES.register("redis", "rediss")
def _redis(url: str) -> OnlineStore:
    from strato.features.online.redis import RedisOnlineStore  # imports the redis client only when used

    return RedisOnlineStore(url)


def open_online_store(url: str) -> OnlineStore:
    """The store for ``url``; a bare path is a SQLite file."""
    scheme = url.split("://", 1)[0] if "://" in url else "sqlite"
    return ONLINE_STORES.get(scheme)(url)
