"""The metadata store: resources (desired spec + observed status), their event history and metrics.

One class over SQLAlchemy Core. SQLite by default (WAL, busy timeout, writers begin IMMEDIATE so
concurrent writers queue instead of failing), PostgreSQL by URL. The schema is created and upgraded
by Alembic on open.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strato.errors import AlreadyExists, NotFound
from strato.store.metadata.engine import create_engine
from strato.store.metadata.tables import metric_points, resource_events, resource_revisions, resources

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class ResourceRecord:
    uid: str
    kind: str
    name: str
    spec: dict[str, Any]
    desired: dict[str, Any]
    status: dict[str, Any]
    state: str
    active: bool
    created_at: float
    updated_at: float

    def view(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the API shows of a resource (``spec`` replaces the stored one, e.g. with secrets masked)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "spec": dict(self.spec) if spec is None else spec,
            "status": {"state": self.state, **self.status},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Transition:
    """A state a resource entered, why, and when (``at`` defaults to now)."""

    state: str
    reason: str = ""
    message: str = ""
    at: float | None = None


@dataclass(frozen=True)
class Event:
    at: float
    state: str
    reason: str
    message: str


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    step: int | None
    at: float


def new_uid() -> str:
    """Sortable by creation (nanoseconds first), so equal ``created_at`` still lists in submit order."""
    return f"{time.time_ns():016x}{os.urandom(6).hex()}"


def _record(row: sa.Row[Any]) -> ResourceRecord:
    m = row._mapping
    return ResourceRecord(
        uid=m["uid"],
        kind=m["kind"],
        name=m["name"],
        spec=m["spec"],
        desired=m["desired"],
        status=m["status"],
        state=m["state"],
        active=m["active"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class MetadataStore:
    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, migrate: bool = True):
        self.url = url
        self.engine = create_engine(url)
        self.clock = clock
        self._listeners: list[Callable[[str], None]] = []
        if migrate:
            self.upgrade()

    # Schema ----------------------------------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._write() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction (on SQLite it takes the write lock first: ``BEGIN IMMEDIATE``), for the
        modules that own the other tables of the schema (tracking, registry, lineage)."""
        with self._write() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._read() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # Resources -------------------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        name: str,
        spec: dict[str, Any],
        *,
        state: str,
        reason: str,
        message: str,
        status: dict[str, Any] | None = None,
        active: bool = True,
    ) -> ResourceRecord:
        """Insert a resource and its first event. ``AlreadyExists`` if (kind, name) is taken."""
        now = self.clock()
        uid = new_uid()
        row = {
            "uid": uid,
            "kind": kind,
            "name": name,
            "spec": spec,
            "desired": {},
            "status": status or {},
            "state": state,
            "active": active,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(resources.insert().values(**row))
                conn.execute(
                    resource_events.insert().values(
                        resource_uid=uid, at=now, state=state, reason=reason, message=message
                    )
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"{kind} {name!r} already exists", details={"kind": kind, "name": name}) from None
        return ResourceRecord(**row)  # type: ignore[arg-type]

    def get(self, kind: str, name: str) -> ResourceRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(resources).where(resources.c.kind == kind, resources.c.name == name)).first()
        if row is None:
            raise NotFound(f"{kind} {name!r} not found", details={"kind": kind, "name": name})
        return _record(row)

    def get_by_uid(self, uid: str) -> ResourceRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(resources).where(resources.c.uid == uid)).first()
        if row is None:
            raise NotFound(f"resource {uid} not found")
        return _record(row)

    def list(self, kind: str | None = None, *, active: bool | None = None) -> list[ResourceRecord]:
        query = sa.select(resources).order_by(resources.c.created_at, resources.c.uid)
        if kind is not None:
            query = query.where(resources.c.kind == kind)
        if active is not None:
            query = query.where(resources.c.active == active)
        with self._read() as conn:
            return [_record(r) for r in conn.execute(query)]

    def replace_spec(self, uid: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> ResourceRecord:
        """A new spec (and status, unless None: a reconciler owns it) for a resource whose kind may be
        changed in place by ``apply``."""
        values: dict[str, Any] = {"spec": spec, "updated_at": self.clock()}
        if status is not None:
            values["status"] = status
        with self._write() as conn:
            result = conn.execute(resources.update().where(resources.c.uid == uid).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"resource {uid} not found")
        self._changed(uid)
        return self.get_by_uid(uid)

    def set_desired(self, uid: str, **changes: Any) -> ResourceRecord:
        """Merge ``changes`` into what the user wants (stop, delete, ...). Written by the API only."""
        with self._write() as conn:
            row = conn.execute(sa.select(resources.c.desired).where(resources.c.uid == uid)).first()
            if row is None:
                raise NotFound(f"resource {uid} not found")
            desired = {**row.desired, **changes}
            conn.execute(
                resources.update()
                .where(resources.c.uid == uid)
                .values(desired=desired, active=True, updated_at=self.clock())
            )
        return self.get_by_uid(uid)

    def update_status(
        self,
        uid: str,
        status: dict[str, Any],
        *transitions: Transition,
        active: bool | None = None,
        metrics: Iterable[MetricPoint] = (),
    ) -> None:
        """Write the observed status, the states it passed through (each change becomes an event with
        its reason) and new metric points, in one transaction. The last transition's state is the
        resource's state."""
        now = self.clock()
        with self._write() as conn:
            current = conn.execute(sa.select(resources.c.state).where(resources.c.uid == uid)).scalar_one_or_none()
            if current is None:
                raise NotFound(f"resource {uid} not found")
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if active is not None:
                values["active"] = active
            events = []
            for step in transitions:
                if step.state != current:
                    events.append(
                        {
                            "resource_uid": uid,
                            "at": step.at or now,
                            "state": step.state,
                            "reason": step.reason or step.state,
                            "message": step.message,
                        }
                    )
                    current = values["state"] = step.state
            if events:
                conn.execute(resource_events.insert(), events)
            rows = [
                {"resource_uid": uid, "name": p.name, "value": p.value, "step": p.step, "at": p.at} for p in metrics
            ]
            if rows:
                conn.execute(metric_points.insert(), rows)
            conn.execute(resources.update().where(resources.c.uid == uid).values(**values))
        self._changed(uid)

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(uid)`` runs after every committed status change (in this process), so waiters can
        answer at once instead of polling."""
        self._listeners.append(callback)

    def _changed(self, uid: str) -> None:
        for callback in list(self._listeners):
            callback(uid)

    def delete(self, uid: str) -> None:
        with self._write() as conn:
            conn.execute(metric_points.delete().where(metric_points.c.resource_uid == uid))
            conn.execute(resource_events.delete().where(resource_events.c.resource_uid == uid))
            conn.execute(resources.delete().where(resources.c.uid == uid))

    # Revisions -------------------------------------------------------------------------------------
    def add_revision(self, kind: str, name: str, spec: dict[str, Any], message: str) -> int:
        """Record ``spec`` as the next revision of (kind, name); returns its number (1, 2, ...)."""
        with self._write() as conn:
            last = conn.execute(
                sa.select(sa.func.max(resource_revisions.c.revision)).where(
                    resource_revisions.c.kind == kind, resource_revisions.c.name == name
                )
            ).scalar_one_or_none()
            number = int(last or 0) + 1
            conn.execute(
                resource_revisions.insert().values(
                    kind=kind, name=name, revision=number, spec=spec, message=message, at=self.clock()
                )
            )
        return number

    def revisions(self, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        query = (
            sa.select(resource_revisions)
            .where(resource_revisions.c.kind == kind, resource_revisions.c.name == name)
            .order_by(resource_revisions.c.revision)
        )
        with self._read() as conn:
            return [
                {"revision": r.revision, "spec": r.spec, "message": r.message, "at": r.at} for r in conn.execute(query)
            ]

    # History ---------------------------------------------------------------------------------------
    def events(self, uid: str) -> builtins.list[Event]:
        query = sa.select(resource_events).where(resource_events.c.resource_uid == uid).order_by(resource_events.c.id)
        with self._read() as conn:
            return [Event(at=r.at, state=r.state, reason=r.reason, message=r.message) for r in conn.execute(query)]

    # Metrics ---------------------------------------------------------------------------------------
    def add_metrics(self, uid: str, points: Iterable[MetricPoint]) -> None:
        rows = [{"resource_uid": uid, "name": p.name, "value": p.value, "step": p.step, "at": p.at} for p in points]
        if rows:
            with self._write() as conn:
                conn.execute(metric_points.insert(), rows)

    def metrics_since(self, uid: str, after_id: int, limit: int = 1000) -> builtins.list[tuple[int, MetricPoint]]:
        """Points stored after the point ``after_id`` (0: from the first), oldest first, with their ids: for
        readers that resume where they stopped (the MLflow forwarder)."""
        query = (
            sa.select(metric_points)
            .where(metric_points.c.resource_uid == uid, metric_points.c.id > after_id)
            .order_by(metric_points.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [
                (int(r.id), MetricPoint(name=r.name, value=r.value, step=r.step, at=r.at)) for r in conn.execute(query)
            ]

    def metric_counts(self, uid: str, upto_id: int) -> dict[str, int]:
        """How many points of each name were stored up to the point ``upto_id``."""
        query = (
            sa.select(metric_points.c.name, sa.func.count())
            .where(metric_points.c.resource_uid == uid, metric_points.c.id <= upto_id)
            .group_by(metric_points.c.name)
        )
        with self._read() as conn:
            return {str(name): int(count) for name, count in conn.execute(query)}

    def metrics(self, uid: str, names: Sequence[str] | None = None) -> builtins.list[MetricPoint]:
        query = sa.select(metric_points).where(metric_points.c.resource_uid == uid).order_by(metric_points.c.id)
        if names:
            query = query.where(metric_points.c.name.in_(list(names)))
        with self._read() as conn:
            return [MetricPoint(name=r.name, value=r.value, step=r.step, at=r.at) for r in conn.execute(query)]
