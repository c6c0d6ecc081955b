"""The embedded online store: one SQLite file, one table keyed (view, entity key), WAL so readers never
wait for a writer. Connections come from a small pool instead of one per thread: a thread pool's threads
come and go, and a pooled connection is reused by whichever thread asks next (one thread at a time)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from strato.errors import InvalidArgument, Unavailable
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

BUSY_TIMEOUT_S = 10.0
MAX_IDLE_CONNECTIONS = 16
KEYS_PER_QUERY = 500  # well under SQLite's limit on bound parameters

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS online_rows (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    event_ts REAL NOT NULL,
    schema_id TEXT NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_schemas (
    view TEXT NOT NULL,
    schema_id TEXT NOT NULL,
    features TEXT NOT NULL,
    PRIMARY KEY (view, schema_id)
) WITHOUT ROWID;
"""

# Newer wins: the conflict update only happens when the incoming row is not older; a skipped update
# changes nothing, so total_changes counts exactly the rows applied.
UPSERT_SQL = """
INSERT INTO online_rows (view, key, event_ts, schema_id, vals) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET event_ts = excluded.event_ts, schema_id = excluded.schema_id,
    vals = excluded.vals
WHERE excluded.event_ts >= online_rows.event_ts
"""


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/online.db`` or ``sqlite:////abs/online.db`` (SQLAlchemy's form), or a bare path."""
    if "://" not in url:
        path = url
    elif url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
    else:
        raise InvalidArgument(f"online store URL {url!r} should look like sqlite:///path/online.db")
    if "?" in path:
        raise InvalidArgument(f"online store URL {url!r} takes no options; give sqlite:///path/online.db")
    if not path or path == ":memory:" or path.startswith("file:"):
        raise InvalidArgument(
            f"online store URL {url!r} needs a file path (like sqlite:///path/online.db); an in-memory "
            "database is not shared between connections"
        )
    return path


class SqliteOnlineStore(OnlineStore):
    def __init__(self, url: str):
        self.url = url if "://" in url else f"sqlite:///{url}"
        self.path = Path(sqlite_path(url)).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._names: dict[str, tuple[str, ...]] = {}  # schema id -> feature names (ids are content hashes)
        self._projections = Projections()
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA_SQL)

    # ---- connections ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise Unavailable(f"online store {self.url} is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise Unavailable(f"online store {self.url} failed: {exc}") from exc
        finally:
            if conn is not None:
                if conn.in_transaction:
                    conn.rollback()
                with self._lock:
                    keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
                    if keep:
                        self._idle.append(conn)
                if not keep:
                    conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

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
        if not keys:
            return 0
        schema = schema_of(features)
        params = [
            (view, key, ts, schema.id, encode_values(view, row)) for key, ts, row in zip(keys, times, rows, strict=True)
        ]
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR IGNORE INTO online_schemas (view, schema_id, features) VALUES (?, ?, ?)",
                (view, schema.id, schema.json),
            )
            before = conn.total_changes
            conn.executemany(UPSERT_SQL, params)
            applied = conn.total_changes - before
            conn.execute("COMMIT")
        return applied

    def read(self, view: str, keys: Sequence[str], features: Sequence[str] | None = None) -> ReadResult:
        check_view(view)
        if not keys:
            return []
        found: dict[str, tuple[float, str, bytes]] = {}
        with self._connection() as conn:
            for start in range(0, len(keys), KEYS_PER_QUERY):
                chunk = keys[start : start + KEYS_PER_QUERY]
                sql = (
                    "SELECT key, event_ts, schema_id, vals FROM online_rows "
                    f"WHERE view = ? AND key IN ({','.join('?' * len(chunk))})"
                )
                for key, ts, schema_id, vals in conn.execute(sql, (view, *chunk)):
                    found[key] = (ts, schema_id, vals)
            unknown = {schema_id for _, schema_id, _ in found.values() if schema_id not in self._names}
            if unknown:
                sql = (
                    "SELECT schema_id, features FROM online_schemas "
                    f"WHERE view = ? AND schema_id IN ({','.join('?' * len(unknown))})"
                )
                for schema_id, names in conn.execute(sql, (view, *unknown)):
                    self._names[schema_id] = names_from_json(names)
        wanted = None if features is None else tuple(features)
        out: ReadResult = []
        for key in keys:
            hit = found.get(key)
            names = None if hit is None else self._names.get(hit[1])
            if hit is None or names is None:  # no row, or the view was deleted while we read
                out.append(None)
                continue
            values = decode_values(hit[2])
            if wanted is not None:
                values = Projections.apply(values, self._projections.positions(hit[1], names, wanted))
            out.append((hit[0], values))
        return out

    def delete_view(self, view: str) -> None:
        check_view(view)
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM online_rows WHERE view = ?", (view,))
            conn.execute("DELETE FROM online_schemas WHERE view = ?", (view,))
            conn.execute("COMMIT")

    def count(self, view: str) -> int:
        check_view(view)
        with self._connection() as conn:
            (n,) = conn.execute("SELECT count(*) FROM online_rows WHERE view = ?", (view,)).fetchone()
        return int(n)
