"""Engines for the metadata store: SQLite tuned for concurrent writers, or any URL SQLAlchemy knows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from strato.errors import InvalidArgument

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidArgument(
            f"database URL {url!r} is not a SQLAlchemy URL (like sqlite:///path or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.drivername == "postgresql":  # psycopg 3 is the driver we ship in the postgres extra
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except ModuleNotFoundError as exc:
        raise InvalidArgument(
            f"database URL {url!r} needs the {exc.name!r} driver: pip install 'strato[postgres]'"
        ) from None


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    configure_sqlite(engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and explicit ``BEGIN`` (``IMMEDIATE`` when the connection's execution option
    ``sqlite_begin`` says so) for every new connection of a SQLite engine. Public so that other users of
    the same database file (Optuna's storage) queue for the write lock the same way."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take over transaction control from pysqlite so writers can BEGIN IMMEDIATE: a deferred
        # transaction that later upgrades to a write lock fails at once with "database is locked"
        # instead of waiting out the busy timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
