"""Which MLflow run belongs to which resource (``tracking_runs``), and how far the platform has
forwarded the resource's metric points into it. Written only by the tracking service; read by anyone
who needs a job's run (the registry registers models from it, lineage links job and run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import tracking_runs


@dataclass(frozen=True)
class TrackedRun:
    resource_uid: str
    run_id: str
    experiment_id: str
    metric_cursor: int
    ended: bool
    created_at: float


def _run(row: sa.Row[Any]) -> TrackedRun:
    return TrackedRun(
        row.resource_uid, row.run_id, row.experiment_id, int(row.metric_cursor), bool(row.ended), float(row.created_at)
    )


class RunIndex:
    def __init__(self, store: MetadataStore):
        self.store = store

    def get(self, resource_uid: str) -> TrackedRun | None:
        with self.store.reading() as conn:
            row = conn.execute(sa.select(tracking_runs).where(tracking_runs.c.resource_uid == resource_uid)).first()
        return _run(row) if row else None

    def by_run_id(self, run_id: str) -> TrackedRun | None:
        with self.store.reading() as conn:
            row = conn.execute(sa.select(tracking_runs).where(tracking_runs.c.run_id == run_id)).first()
        return _run(row) if row else None

    def add(self, resource_uid: str, run_id: str, experiment_id: str) -> TrackedRun:
        """Record a resource's run; the first one recorded wins (a racing second call gets it back)."""
        values = {
            "resource_uid": resource_uid,
            "run_id": run_id,
            "experiment_id": experiment_id,
            "metric_cursor": 0,
            "ended": False,
            "created_at": self.store.clock(),
        }
        try:
            with self.store.writing() as conn:
                conn.execute(tracking_runs.insert().values(**values))
        except IntegrityError:
            pass
        found = self.get(resource_uid)
        assert found is not None
        return found

    def advance(self, resource_uid: str, cursor: int) -> None:
        """The last metric point forwarded (one forwarder thread writes it, in order)."""
        self._set(resource_uid, metric_cursor=cursor)

    def mark_ended(self, resource_uid: str) -> None:
        self._set(resource_uid, ended=True)

    def reopen(self, resource_uid: str) -> None:
        self._set(resource_uid, ended=False)

    def _set(self, resource_uid: str, **values: Any) -> None:
        with self.store.writing() as conn:
            conn.execute(tracking_runs.update().where(tracking_runs.c.resource_uid == resource_uid).values(**values))

    def open_runs(self) -> list[TrackedRun]:
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(tracking_runs).where(tracking_runs.c.ended.is_(False))).all()
        return [_run(row) for row in rows]
