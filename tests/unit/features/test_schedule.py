"""Scheduled materialization: a view with ``materialize_every`` is materialized when due, incrementally,
and a failure is recorded on the view and retried one period later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from strato.features.online import entity_key
from strato.features.service import FeatureStoreService, MaterializationReconciler
from strato.lake.tables import LakeTables
from strato.specs.features import Entity, FeatureView
from strato.store.metadata import MetadataStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = (T0 + timedelta(days=1)).timestamp()

    def __call__(self) -> float:
        return self.now


def test_due_views_are_materialized_incrementally(tmp_path: Path) -> None:
    clock = Clock()
    lake = LakeTables(tmp_path / "lake")
    lake.create("stats", pd.DataFrame({"id": [1, 2], "event_timestamp": [T0, T0], "v": [0.1, 0.2]}))
    service = FeatureStoreService(
        MetadataStore(f"sqlite:///{tmp_path}/meta.db", clock=clock), lake, f"sqlite:///{tmp_path}/online.db",
        clock=clock,
    )  # fmt: skip
    service.apply(Entity(name="thing", join_keys=["id"]))
    service.apply(FeatureView(name="stats", entities=["thing"], source="lake://stats", features={"v": "float64"},
                              materialize_every="1h"))  # fmt: skip
    reconciler = MaterializationReconciler(service, spawn=lambda work: work())
    record = service.store.get("FeatureView", "stats")
    assert record.active  # scheduled views are visited by the reconcile loop
    reconciler.reconcile(record)
    done = service.store.get("FeatureView", "stats").status["materialized"]
    assert done["rows"] == 2 and done["until"] == datetime.fromtimestamp(clock.now, UTC).isoformat()

    lake.append("stats", pd.DataFrame({"id": [1], "event_timestamp": [T0 + timedelta(days=1, minutes=30)], "v": [0.9]}))
    clock.now += 1800  # half a period: not due
    reconciler.reconcile(service.store.get("FeatureView", "stats"))
    assert service.online_store.read("stats", [entity_key([1])], ["v"])[0][1] == [0.1]  # type: ignore[index]
    clock.now += 1800
    reconciler.reconcile(service.store.get("FeatureView", "stats"))
    status = service.store.get("FeatureView", "stats").status
    assert status["materialized"]["rows"] == 1  # only what arrived after the watermark
    assert service.online_store.read("stats", [entity_key([1])], ["v"])[0][1] == [0.9]  # type: ignore[index]


def test_a_failed_schedule_is_recorded_and_retried_a_period_later(tmp_path: Path) -> None:
    clock = Clock()
    lake = LakeTables(tmp_path / "lake")
    lake.create("stats", pd.DataFrame({"id": [1], "event_timestamp": [T0], "v": [0.1]}))
    service = FeatureStoreService(
        MetadataStore(f"sqlite:///{tmp_path}/meta.db", clock=clock), lake, f"sqlite:///{tmp_path}/online.db",
        clock=clock,
    )  # fmt: skip
    service.apply(Entity(name="thing", join_keys=["id"]))
    service.apply(FeatureView(name="stats", entities=["thing"], source="lake://stats", features={"v": "float64"},
                              materialize_every="1h"))  # fmt: skip
    (tmp_path / "online.db").mkdir()  # the store cannot be opened: a directory where its file should be
    reconciler = MaterializationReconciler(service, spawn=lambda work: work())
    reconciler.reconcile(service.store.get("FeatureView", "stats"))
    status = service.store.get("FeatureView", "stats").status
    assert status["schedule_failed_at"] == clock.now and "online.db" in status["schedule_error"]
    calls: list[object] = []
    later = MaterializationReconciler(service, spawn=calls.append)
    later.reconcile(service.store.get("FeatureView", "stats"))
    assert calls == []  # not due again until a period after the failure
