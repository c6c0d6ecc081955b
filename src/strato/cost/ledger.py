"""The cost ledger: every job attempt (tuning trials are jobs), batch worker attempt and endpoint replica
hour gets a record: measured run time x instances x the hourly price of the instance its resources map to
on the reference target. Spot jobs are priced at spot, across every retry and preemption.

A pass (``CostLedger.run_once``, every ``interval`` seconds on a thread of the control plane) reads the
resources and upserts records by (resource, item), so passes are idempotent and a restarted control plane
carries on. Endpoint time is accumulated from the last pass (one record per variant and UTC day).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from strato.cost.pricing import Pricer
from strato.specs.base import Resources
from strato.store.metadata import MetadataStore, ResourceRecord
from strato.store.metadata.tables import cost_records

log = logging.getLogger("strato.cost")


@dataclass
class CostRecord:
    resource_uid: str
    kind: str
    name: str
    item: str
    started_at: float
    ended_at: float
    seconds: float
    units: int
    instance_type: str
    cloud: str
    region: str
    purchase: str
    hourly: float
    cost: float
    model: str | None
    labels: dict[str, str]


class LedgerStore:
    def __init__(self, store: MetadataStore):
        self.store = store

    def upsert(self, records: Iterable[CostRecord]) -> int:
        rows = [r.__dict__ for r in records]
        if not rows:
            return 0
        with self.store.writing() as conn:
            for row in rows:
                updated = conn.execute(
                    cost_records.update()
                    .where(cost_records.c.resource_uid == row["resource_uid"], cost_records.c.item == row["item"])
                    .values(**row)
                )
                if updated.rowcount == 0:
                    conn.execute(cost_records.insert().values(**row))
        return len(rows)

    def records(
        self, *, since: float | None = None, uids: Iterable[str] | None = None
    ) -> builtins.list[CostRecord]:
        query = sa.select(cost_records).order_by(cost_records.c.started_at, cost_records.c.id)
        if since is not None:
            query = query.where(cost_records.c.ended_at >= since)
        if uids is not None:
            query = query.where(cost_records.c.resource_uid.in_(list(uids)))
        with self.store.reading() as conn:
            return [
                CostRecord(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in conn.execute(query)
            ]

    def totals(self, uids: Iterable[str]) -> dict[str, float]:
        ids = list(uids)
        if not ids:
            return {}
        query = (
            sa.select(cost_records.c.resource_uid, sa.func.sum(cost_records.c.cost))
            .where(cost_records.c.resource_uid.in_(ids))
            .group_by(cost_records.c.resource_uid)
        )
        with self.store.reading() as conn:
            return {uid: float(total) for uid, total in conn.execute(query)}

    def last_accounted(self, uid: str) -> float | None:
        query = sa.select(sa.func.max(cost_records.c.ended_at)).where(cost_records.c.resource_uid == uid)
        with self.store.reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else float(value)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def _next_midnight(at: float) -> float:
    day = datetime.fromtimestamp(at, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp() + 86400


class CostLedger:
    def __init__(
        self,
        store: MetadataStore,
        pricer: Callable[[], Pricer],
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 30.0,
        on_pass: Callable[[], None] | None = None,
    ):
        self.store = store
        self.ledger = LedgerStore(store)
        self._pricer = pricer  # lazy: the catalog loads on the first pass, not at start-up
        self.clock = clock
        self.interval = interval
        self.on_pass = on_pass  # budgets are checked after each pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # One pass ---------------------------------------------------------------------------------------
    def run_once(self) -> int:
        pricer = self._pricer()
        now = self.clock()
        records: list[CostRecord] = []
        for record in self.store.list():
            try:
                if record.kind == "TrainingJob":
                    records += self._job(record, pricer, now)
                elif record.kind == "BatchTransformJob":
                    records += self._batch(record, pricer, now)
                elif record.kind == "Endpoint":
                    records += self._endpoint(record, pricer, now)
            except Exception:  # one resource's odd status never stops the ledger
                log.exception("cost ledger: cannot price %s %s", record.kind, record.name)
        written = self.ledger.upsert(records)
        if self.on_pass is not None:
            self.on_pass()
        return written

    def _record(
        self, record: ResourceRecord, pricer: Pricer, item: str, start: float, end: float, units: int,
        resources: Resources, *, spot: bool = False, model: str | None = None,
    ) -> CostRecord | None:  # fmt: skip
        priced = pricer.price(resources.cpus, resources.memory, resources.gpus, spot=spot)
        if priced is None:
            return None
        seconds = max(0.0, end - start)
        return CostRecord(
            resource_uid=record.uid, kind=record.kind, name=record.name, item=item, started_at=start,
            ended_at=end, seconds=seconds, units=units, instance_type=priced.offer.instance_type,
            cloud=priced.offer.cloud, region=priced.offer.region, purchase=priced.purchase,
            hourly=priced.hourly, cost=priced.hourly * units * seconds / 3600.0, model=model,
            labels=dict(record.spec.get("labels") or {}),
        )  # fmt: skip

    def _job(self, record: ResourceRecord, pricer: Pricer, now: float) -> list[CostRecord]:
        spec = record.spec
        resources = Resources.model_validate(spec.get("resources") or {})
        spot = bool((spec.get("spot") or {}).get("enabled", False)) if spec.get("spot") else False
        units = int(spec.get("instance_count") or 1)
        out = []
        for attempt in record.status.get("attempts", []):
            start = attempt.get("started_at")
            if start is None:
                continue
            end = float(attempt.get("ended_at") or now)
            row = self._record(record, pricer, f"attempt-{attempt['attempt']}", float(start), end, units, resources,
                               spot=spot)  # fmt: skip
            if row is not None:
                out.append(row)
        return out

    def _batch(self, record: ResourceRecord, pricer: Pricer, now: float) -> list[CostRecord]:
        resources = Resources.model_validate(record.spec.get("resources") or {})
        out = []
        for worker in record.status.get("workers", []):
            for number, attempt in enumerate(worker.get("attempts", []), start=1):
                end = float(attempt.get("ended_at") or now)
                item = f"worker-{worker['index']}-attempt-{number}"
                row = self._record(record, pricer, item, float(attempt["started_at"]), end, 1, resources,
                                   model=record.spec.get("model"))  # fmt: skip
                if row is not None:
                    out.append(row)
        return out

    def _endpoint(self, record: ResourceRecord, pricer: Pricer, now: float) -> list[CostRecord]:
        """Replica time since the last pass, per variant and UTC day, added to that day's record."""
        last = self.ledger.last_accounted(record.uid)
        existing = {r.item: r for r in self.ledger.records(uids=[record.uid])}
        variants = {v.get("name"): v for v in record.spec.get("variants", [])}
        touched: dict[str, CostRecord] = {}
        for name, status in (record.status.get("variants") or {}).items():
            resources = Resources.model_validate((variants.get(name) or {}).get("resources") or {})
            for replica in status.get("replicas", []):
                start = max(float(replica.get("started_at") or now), last or 0.0)
                while start < now:  # split at midnight so each day has its own record
                    end = min(now, _next_midnight(start))
                    item = f"{name}:{_day(start)}"
                    row = self._record(record, pricer, item, start, end, 1, resources, model=status.get("model"))
                    if row is not None:
                        base = touched.get(item) or existing.get(item)
                        if base is not None:
                            row.started_at = min(base.started_at, row.started_at)
                            row.ended_at = max(base.ended_at, row.ended_at)
                            row.seconds += base.seconds
                            row.cost += base.cost
                        touched[item] = row
                    start = end
        return list(touched.values())

    # Background thread ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cost-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                log.exception("cost ledger pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
