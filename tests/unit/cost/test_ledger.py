"""The ledger prices measured time: job attempts (spot at spot, gangs by their workers), batch workers,
and endpoint replica time accumulated pass by pass and split at UTC midnight; passes are idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strato.cost.ledger import CostLedger
from strato.store.metadata import MetadataStore

NOON = datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class FakeOffer:
    instance_type: str
    cloud: str = "aws"
    region: str = "us-east-1"


@dataclass(frozen=True)
class FakePriced:
    offer: FakeOffer
    purchase: str
    hourly: float


class FakePricer:
    """1 $/h per CPU on demand, a third of that on spot."""

    def price(self, cpus: float, memory_bytes: int, gpus: int = 0, *, spot: bool = False) -> FakePriced:
        return FakePriced(FakeOffer(f"cpu{cpus:g}"), "spot" if spot else "on_demand", cpus / (3 if spot else 1))


class Clock:
    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> tuple[MetadataStore, CostLedger, Clock]:
    clock = Clock()
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", clock=clock)
    return store, CostLedger(store, lambda: FakePricer(), clock=clock), clock  # type: ignore[arg-type,return-value]


def make(store: MetadataStore, kind: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> None:
    store.create(kind, name, {"kind": kind, "name": name, **spec}, state="Running", reason="x", message="",
                 status=status)  # fmt: skip


def test_job_attempts_spot_and_gangs(world: tuple[MetadataStore, CostLedger, Clock]) -> None:
    store, ledger, clock = world
    attempts = [
        {"attempt": 1, "started_at": NOON - 7200, "ended_at": NOON - 3600, "outcome": "Interrupted"},
        {"attempt": 2, "started_at": NOON - 1800},  # running: priced up to now
    ]
    make(store, "TrainingJob", "gang", {"resources": {"cpus": 3}, "instance_count": 2, "spot": {"enabled": True}},
         {"attempts": attempts})  # fmt: skip
    assert ledger.run_once() == 2
    rows = {r.item: r for r in ledger.ledger.records()}
    assert rows["attempt-1"].cost == pytest.approx(1.0 * 2 * 1.0)  # 1 $/h spot x 2 workers x 1 h
    assert rows["attempt-2"].cost == pytest.approx(1.0 * 2 * 0.5)
    assert rows["attempt-1"].purchase == "spot"
    ledger.run_once()  # idempotent: same rows, same totals
    assert len(ledger.ledger.records()) == 2
    clock.now += 1800
    ledger.run_once()
    assert {r.item: r.cost for r in ledger.ledger.records()}["attempt-2"] == pytest.approx(2.0)


def test_endpoint_time_accumulates_and_splits_at_midnight(world: tuple[MetadataStore, CostLedger, Clock]) -> None:
    store, ledger, clock = world
    clock.now = datetime(2026, 3, 1, 23, tzinfo=UTC).timestamp()
    replicas = [{"id": "a", "started_at": clock.now - 3600}, {"id": "b", "started_at": clock.now}]
    make(store, "Endpoint", "ep", {"variants": [{"name": "main", "resources": {"cpus": 2}}]},
         {"variants": {"main": {"model": "m", "replicas": replicas}}})  # fmt: skip
    ledger.run_once()
    assert [(r.item, r.cost) for r in ledger.ledger.records()] == [("main:2026-03-01", pytest.approx(2.0))]
    clock.now += 2 * 3600  # 01:00 the next day: two replicas for two hours, one of them before midnight
    ledger.run_once()
    by_day = {r.item: r for r in ledger.ledger.records()}
    assert by_day["main:2026-03-01"].cost == pytest.approx(2.0 + 2 * 2 * 1.0)
    assert by_day["main:2026-03-02"].cost == pytest.approx(2 * 2 * 1.0)
    assert by_day["main:2026-03-01"].model == "m"
    ledger.run_once()  # no time passed: nothing added
    assert sum(r.cost for r in ledger.ledger.records()) == pytest.approx(10.0)


def test_batch_workers_and_totals(world: tuple[MetadataStore, CostLedger, Clock]) -> None:
    store, ledger, _ = world
    workers = [{"index": i, "attempts": [{"started_at": NOON - 3600, "ended_at": NOON}]} for i in range(2)]
    make(store, "BatchTransformJob", "score", {"model": "models:/m/1", "resources": {"cpus": 1}},
         {"workers": workers})  # fmt: skip
    ledger.run_once()
    uid = store.get("BatchTransformJob", "score").uid
    assert ledger.ledger.totals([uid]) == {uid: pytest.approx(2.0)}
