"""A materialization killed half-way (SIGKILL, for real) leaves the online store consistent, and the next
incremental run resumes from the old watermark and ends where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from strato.features.online import entity_key, open_online_store
from strato.features.service import FeatureStoreService
from strato.lake.tables import LakeTables
from strato.specs.features import Entity, FeatureView
from strato.store.metadata import MetadataStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENTITIES = 300_000

CHILD = """
import sys
from strato.features.service import FeatureStoreService
from strato.lake.tables import LakeTables
from strato.store.metadata import MetadataStore
home = sys.argv[1]
service = FeatureStoreService(MetadataStore(f"sqlite:///{home}/meta.db"), LakeTables(f"{home}/lake"),
                              f"sqlite:///{home}/online.db")
service.materialize(None, sys.argv[2], incremental=True)
"""


def workspace(home: Path) -> FeatureStoreService:
    rng = np.random.default_rng(7)
    ids = np.arange(ENTITIES)
    frame = pd.DataFrame(
        {
            "driver_id": np.concatenate([ids, ids]),
            "event_timestamp": [T0] * ENTITIES + [T0 + timedelta(hours=1)] * ENTITIES,
            "conv_rate": rng.random(2 * ENTITIES),
        }
    )
    lake = LakeTables(home / "lake")
    lake.create("stats", frame)
    service = FeatureStoreService(MetadataStore(f"sqlite:///{home}/meta.db"), lake, f"sqlite:///{home}/online.db")
    service.apply(Entity(name="driver", join_keys=["driver_id"]))
    service.apply(
        FeatureView(name="stats", entities=["driver"], source="lake://stats", features={"conv_rate": "float64"})
    )
    return service


def test_killed_materialization_resumes_to_the_same_state(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    service = workspace(home)
    end = (T0 + timedelta(days=1)).isoformat()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(home), end], env={**os.environ})
    online = open_online_store(f"sqlite:///{home}/online.db")
    deadline = time.monotonic() + 120
    written = 0
    while child.poll() is None and time.monotonic() < deadline:
        written = online.count("stats")
        if written > 0:
            break
        time.sleep(0.005)  # polling for the child's first write, not waiting for an outcome
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    partial = online.count("stats")
    assert 0 < partial < ENTITIES, f"the kill should land mid-way (saw {partial} of {ENTITIES})"

    # Consistent: every row that made it is the entity's latest value at 01:00, whole.
    ids = list(range(0, ENTITIES, 997))
    frame = LakeTables(home / "lake").read("stats").to_pandas()
    latest = frame[frame.event_timestamp == frame.event_timestamp.max()].set_index("driver_id")["conv_rate"]
    hits = online.read("stats", [entity_key([i]) for i in ids], ["conv_rate"])
    assert all(hit is None or hit[1] == [latest[i]] for i, hit in zip(ids, hits, strict=True))
    assert service.store.get("FeatureView", "stats").status.get("materialized") is None  # watermark not moved

    done = service.materialize(None, end, incremental=True)
    assert done[0].rows == ENTITIES and online.count("stats") == ENTITIES
    values = online.read("stats", [entity_key([i]) for i in range(0, ENTITIES, 4999)], ["conv_rate"])
    assert [v[1][0] for v in values if v is not None] == latest.iloc[::4999].tolist()
    assert service.store.get("FeatureView", "stats").status["materialized"]["until"].startswith("2026-01-02")
    assert service.materialize(None, end, incremental=True) == []  # nothing new after the watermark
