"""Generated feature data for the feature store benchmarks (offline now, online later).

Deterministic (seeded numpy), written once per size under ``benchmarks/.data/features/<size>/`` and reused:

* ``driver_hourly``: every entity has ``events`` rows, one in each of ``events`` equal slices of a 14-day
  span (so no two rows of an entity share a time); 10 float32 features; TTL 2 days.
* ``driver_stats``: ``ceil(events / 2)`` rows per entity the same way; 3 float32 features and an int64;
  TTL 7 days.
* ``driver_profile``: one row per entity in the first 7 days; a float32, an int64 and a string; no TTL.

Each view is written as Parquet (``<view>.parquet``, for Feast and the hand-written DuckDB query) and as a
Delta table (``<view>.delta``, for Strato), with the same rows in the same order (by event time, as data
appended over time is). Entity rows (``entities-<n>.parquet``: ``driver_id``, ``event_timestamp``) pick
their ids from the known entities plus 2% unknown ones (no data at all) and their times from one day before
the span to two days after it, so some rows have no value inside a view's TTL and must come back with nulls.

Only the standard library is imported at module level: the Feast side imports this module from its own
virtualenv, which has numpy and pyarrow but not deltalake.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATA_ROOT = Path(__file__).resolve().parent / ".data" / "features"
GENERATION = "1"  # bump when the data below changes: cached sizes with another value are made again
KEY = "driver_id"
TIMESTAMP = "event_timestamp"
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=14)


@dataclass(frozen=True)
class Size:
    name: str
    entities: int
    events: int  # rows per entity of driver_hourly

    @property
    def rows(self) -> int:
        return self.entities * self.events


@dataclass(frozen=True)
class View:
    name: str
    features: tuple[str, ...]
    types: tuple[str, ...]  # "float32", "int64" or "string", one per feature
    ttl: float | None  # seconds

    def events(self, size: Size) -> int:
        if self.name == "driver_profile":
            return 1
        return size.events if self.name == "driver_hourly" else math.ceil(size.events / 2)


SIZES = {
    "small": Size("small", 200_000, 10),  # 2M hourly rows
    "large": Size("large", 1_000_000, 14),  # 14M hourly rows: one a day for 14 days
}
DAY = 86_400.0
VIEWS = (
    View("driver_hourly", tuple(f"hourly_{i}" for i in range(10)), ("float32",) * 10, 2 * DAY),
    View("driver_stats", ("stats_0", "stats_1", "stats_2", "stats_trips"), ("float32",) * 3 + ("int64",), 7 * DAY),
    View("driver_profile", ("profile_rating", "profile_age_days", "profile_tier"), ("float32", "int64", "string"),
         None),
)  # fmt: skip


def size_dir(size: Size) -> Path:
    return DATA_ROOT / size.name


def parquet_path(size: Size, view: View) -> Path:
    return size_dir(size) / f"{view.name}.parquet"


def delta_path(size: Size, view: View) -> Path:
    return size_dir(size) / f"{view.name}.delta"


def entities_path(size: Size, rows: int) -> Path:
    return size_dir(size) / f"entities-{rows}.parquet"


def ensure_views(size: Size) -> Path:
    """Write the three views of ``size`` as Parquet and Delta unless this generation is already there."""
    folder = size_dir(size)
    marker = folder / "COMPLETE"
    if marker.exists() and marker.read_text().strip() == GENERATION:
        return folder
    import time

    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for index, view in enumerate(VIEWS):
        table = _view_table(size, view, index)
        pq.write_table(table, parquet_path(size, view))
        write_deltalake(str(delta_path(size, view)), table)
        print(f"  {size.name}: {view.name}: {table.num_rows:,} rows written", flush=True)
        del table
    marker.write_text(GENERATION + "\n")
    print(f"  {size.name}: data generated in {time.perf_counter() - started:.0f}s under {folder}", flush=True)
    return folder


def ensure_entities(size: Size, rows: int) -> Path:
    """Write (once) ``rows`` entity rows for ``size``; ensure_views must have run first."""
    path = entities_path(size, rows)
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([7, size.entities, rows])
    unknown = max(1, size.entities // 50)  # ids with no data in any view
    ids = rng.integers(0, size.entities + unknown, rows, dtype=np.int64)
    low = _us(START - timedelta(days=1))
    high = _us(START + SPAN + timedelta(days=2))
    times = rng.integers(low, high, rows, dtype=np.int64)
    table = pa.table({KEY: ids, TIMESTAMP: pa.array(times, pa.timestamp("us", tz="UTC"))})
    partial = path.with_suffix(".partial")
    pq.write_table(table, partial)
    partial.rename(path)
    return path


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _view_table(size: Size, view: View, index: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([11, size.entities, index])
    per_entity = view.events(size)
    rows = size.entities * per_entity
    ids = np.repeat(np.arange(size.entities, dtype=np.int64), per_entity)
    if per_entity == 1:  # the profile: once, somewhere in the first half of the span
        offsets = rng.random(rows) * 0.5
    else:  # slice k of per_entity equal slices of the span, at a random point inside it
        offsets = (np.tile(np.arange(per_entity), size.entities) + rng.random(rows)) / per_entity
    times = _us(START) + (offsets * SPAN.total_seconds() * 1_000_000).astype(np.int64)
    order = np.argsort(times, kind="stable")
    columns = {KEY: ids[order], TIMESTAMP: pa.array(times[order], pa.timestamp("us", tz="UTC"))}
    del ids, times, offsets
    for name, kind in zip(view.features, view.types, strict=True):
        if kind == "float32":
            values = rng.standard_normal(rows, dtype=np.float32)
            columns[name] = values[order]
        elif kind == "int64":
            columns[name] = rng.integers(0, 1_000, rows, dtype=np.int64)[order]
        else:
            tiers = pa.array(["bronze", "silver", "gold", "platinum"])
            columns[name] = tiers.take(pa.array(rng.integers(0, 4, rows)[order]))
    return pa.table(columns)
