"""The team online store on Redis: one string per (prefix, view, entity key), read in batches with MGET.

A row's value is ``<event_ts>|<feature list id>|<encoded values>``; the feature lists of a view live in
one hash, ``<prefix>:<view>``, rows under ``<prefix>:<view>:<entity key>`` (the view percent-encoded, so
no view's keys match another view's SCAN pattern). Writes go through one Lua script so "newer wins" is
atomic per row. Timeouts are short and retries few, so a Redis that went away gives a clear error in
seconds instead of a hang.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from strato.errors import InvalidArgument, StratoError, Unavailable
from strato.features.online.base import (
    OnlineStore,
    Projections,
    ReadResult,
    check_view,
    check_write,
    decode_values,
    encode_values,
    names_from_json,
    schema_of,
)

DEFAULT_PREFIX = "strato"
SOCKET_TIMEOUT_S = 2.0
ROWS_PER_CALL = 1000  # rows per script call / keys per MGET: bounded work per Redis round trip
SCAN_COUNT = 1000
PREFIX_BYTES = 40  # enough of a stored value to hold its event time (a float's repr is <= 24 characters)

# KEYS[1]: the view's feature-list hash; KEYS[2..]: row keys. ARGV[1], ARGV[2]: feature list id and names;
# ARGV[i + 1]: the value for KEYS[i], which starts with its event time.
WRITE_SCRIPT = f"""
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
local applied = 0
for i = 2, #KEYS do
  local value = ARGV[i + 1]
  local stored = redis.call('GETRANGE', KEYS[i], 0, {PREFIX_BYTES - 1})
  if stored == '' or tonumber(string.match(stored, '^[^|]+')) <= tonumber(string.match(value, '^[^|]+')) then
    redis.call('SET', KEYS[i], value)
    applied = applied + 1
  end
end
return applied
"""
WRITE_SHA = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisOnlineStore(OnlineStore):
    """``redis://[:password@]host:port/db[?prefix=name]`` (``rediss://`` for TLS)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"prefix"})
        if unknown:
            raise InvalidArgument(f"online store URL option {unknown[0]!r} is not known (known: prefix)")
        self.prefix = options.get("prefix", [DEFAULT_PREFIX])[-1]
        if not self.prefix:
            raise InvalidArgument("online store URL option prefix is empty; give ?prefix=name or leave it out")
        try:
            host, port = parts.hostname or "127.0.0.1", parts.port or 6379
            db = int(parts.path.strip("/") or 0)
        except ValueError:
            raise InvalidArgument(
                f"online store URL {parts.scheme}://{parts.hostname}:...{parts.path} should look like "
                "redis://host:port/db with a numeric port and db"
            ) from None
        self.where = f"{parts.scheme}://{host}:{port}/{db}"  # for messages: never the password
        self.url = self.where + (f"?prefix={quote(self.prefix)}" if "prefix" in options else "")
        self._pool = redis.ConnectionPool(
            connection_class=redis.SSLConnection if parts.scheme == "rediss" else redis.Connection,
            host=host,
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            # One immediate retry on a dropped connection (a pooled socket from before a Redis restart);
            # none on timeouts, which would only double the wait.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._client = redis.Redis(connection_pool=self._pool)
        self._names: dict[str, tuple[str, ...]] = {}  # feature list id -> names (ids are content hashes)
        self._projections = Projections()

    # ---- keys and errors ------------------------------------------------------------------------

    def _view_key(self, view: str) -> str:
        return f"{self.prefix}:{quote(view, safe='')}"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise Unavailable(f"online store {self.where} is unreachable: {exc}") from exc
        except RedisError as exc:
            raise StratoError(f"online store {self.where} failed: {exc}") from exc

    def close(self) -> None:
        self._pool.disconnect()

    # ---- the contract ---------------------------------------------------------------------------

    def write(
        self,
        view: str,
        keys: Sequence[str],
        event_ts: Sequence[float],
        rows: Sequence[Sequence[Any]],
        *,
        features: Sequence[str],
    ) -> int:
        times = check_write(view, keys, event_ts, rows, features)
        schema = schema_of(features)
        head = self._view_key(view)
        values = [
            f"{ts!r}|{schema.id}|".encode() + encode_values(view, row) for ts, row in zip(times, rows, strict=True)
        ]
        applied = 0
        with self._errors():
            for start in range(0, len(keys), ROWS_PER_CALL):
                chunk = range(start, min(start + ROWS_PER_CALL, len(keys)))
                script_keys = [head, *(f"{head}:{keys[i]}" for i in chunk)]
                args = [schema.id, schema.json, *(values[i] for i in chunk)]
                applied += self._run_write(script_keys, args)
        return applied

    def _run_write(self, keys: list[str], args: list[Any]) -> int:
        try:
            return int(self._client.evalsha(WRITE_SHA, len(keys), *keys, *args))  # type: ignore[arg-type]
        except NoScriptError:  # a fresh or restarted Redis: load the script and go again
            self._client.script_load(WRITE_SCRIPT)
            return int(self._client.evalsha(WRITE_SHA, len(keys), *keys, *args))  # type: ignore[arg-type]

    def read(self, view: str, keys: Sequence[str], features: Sequence[str] | None = None) -> ReadResult:
        check_view(view)
        head = self._view_key(view)
        stored: list[bytes | None] = []
        with self._errors():
            for start in range(0, len(keys), ROWS_PER_CALL):
                chunk = keys[start : start + ROWS_PER_CALL]
                stored.extend(cast(list[bytes | None], self._client.mget([f"{head}:{key}" for key in chunk])))
            parsed = [None if value is None else value.split(b"|", 2) for value in stored]
            unknown = sorted({p[1].decode() for p in parsed if p is not None} - self._names.keys())
            if unknown:
                texts = cast(list[bytes | None], self._client.hmget(head, unknown))
                for schema_id, text in zip(unknown, texts, strict=True):
                    if text is not None:
                        self._names[schema_id] = names_from_json(text)
        wanted = None if features is None else tuple(features)
        out: ReadResult = []
        for p in parsed:
            sid = "" if p is None else p[1].decode()
            names = self._names.get(sid)
            if p is None or names is None:  # no row, or the view was deleted while we read
                out.append(None)
                continue
            values = decode_values(p[2])
            if wanted is not None:
                values = Projections.apply(values, self._projections.positions(sid, names, wanted))
            out.append((float(p[0]), values))
        return out

    def _scan_rows(self, view: str) -> Iterator[list[Any]]:
        pattern = f"{_glob_escape(self._view_key(view))}:*"
        cursor = 0
        while True:
            cursor, batch = self._client.scan(cursor, match=pattern, count=SCAN_COUNT)  # type: ignore[misc]
            if batch:
                yield batch
            if cursor == 0:
                return

    def delete_view(self, view: str) -> None:
        check_view(view)
        with self._errors():
            # Feature lists first: a row written while we scan brings its list back with it.
            self._client.delete(self._view_key(view))
            for batch in self._scan_rows(view):
                self._client.unlink(*batch)

    def count(self, view: str) -> int:
        check_view(view)
        with self._errors():
            return sum(len(batch) for batch in self._scan_rows(view))
