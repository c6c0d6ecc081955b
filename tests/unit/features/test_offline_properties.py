"""get_historical_features agrees with the slow reference join on random data: 1-3 views with different join
keys and key types, random ttls, ties in event time (broken by created time, or not), rows written out of
time order, entity rows in several time zones, duplicate entity rows and keys the sources never saw."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strato.features.offline as offline
from strato.features.offline import ViewSource, get_historical_features
from tests.unit.features.reference import acceptable, micros

BASE = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
KEY_SETS = [("a",), ("b",), ("a", "b")]
TIME_TYPES = [
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("ns"),
    pa.timestamp("ms", tz="Asia/Tokyo"),
    pa.timestamp("s", tz="America/New_York"),
]
ZONES = [None, "UTC", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "mixed"]


def minute(n: int) -> datetime:
    return BASE + timedelta(minutes=n)


@st.composite
def source_tables(draw: Any, name: str, with_created: bool) -> pa.Table:
    n = draw(st.integers(0, 25))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 4),  # a: keys 5 and 6 only occur in entity rows
                st.sampled_from(["x", "y", "z"]),
                st.integers(0, 10),  # event minute: a small range makes ties common
                st.one_of(st.none(), st.integers(0, 5), st.integers(0, 5)),  # created (hours after the event)
                st.one_of(st.none(), st.integers(-100, 100)),
                st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            ),
            min_size=n,
            max_size=n,
        )
    )  # the list order is the write order: late-arriving rows come after newer ones
    if rows:  # corrections: the same key and event time again, written later with other values
        fixes = draw(st.lists(st.tuples(st.sampled_from(rows), st.integers(0, 5), st.integers(-9, 9)), max_size=6))
        rows += [(r[0], r[1], r[2], created, value, None) for r, created, value in fixes]
        rows = draw(st.permutations(rows))
    time_type = draw(st.sampled_from(TIME_TYPES))
    columns: dict[str, pa.Array] = {
        "a": pa.array([r[0] for r in rows], draw(st.sampled_from([pa.int64(), pa.int32(), pa.int16()]))),
        "b": pa.array([r[1] for r in rows], draw(st.sampled_from([pa.string(), pa.large_string()]))),
        "ts": pa.array([minute(r[2]) for r in rows], time_type),
        f"{name}_i": pa.array([r[4] for r in rows], pa.int64()),
        f"{name}_f": pa.array([r[5] for r in rows], pa.float64()),
    }
    if with_created:
        created = [None if r[3] is None else minute(r[2]) + timedelta(hours=r[3]) for r in rows]
        columns["created"] = pa.array(created, pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


@st.composite
def views(draw: Any) -> list[ViewSource]:
    result = []
    for i in range(draw(st.integers(1, 3))):
        with_created = draw(st.booleans())
        name = f"v{i}"
        table = draw(source_tables(name, with_created))
        result.append(
            ViewSource(
                name=name,
                join_keys=draw(st.sampled_from(KEY_SETS)),
                timestamp_field="ts",
                features=(f"{name}_i", f"{name}_f"),
                source=table if draw(st.booleans()) else ds.dataset(table),  # a dataset is scanned with filters
                created_timestamp_field="created" if with_created else None,
                ttl=draw(st.sampled_from([None, 0, 60, 150.5, 300, 600, 3600])),
            )
        )
    return result


@st.composite
def entity_frames(draw: Any) -> Any:
    n = draw(st.integers(0, 15))
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, 6), st.sampled_from(["x", "y", "z", "w"]), st.integers(-2, 14)),
            min_size=n,
            max_size=n,
        )
    )
    rows += draw(st.lists(st.sampled_from(rows), max_size=3)) if rows else []  # exact duplicates
    zone = draw(st.sampled_from(ZONES))
    times = pd.Series([minute(r[2]) + timedelta(seconds=draw(st.sampled_from([0, 0, 1, 30]))) for r in rows])
    times = pd.to_datetime(times, utc=True)
    if zone == "mixed":  # an object column of aware values, each in its own zone
        zones = draw(st.lists(st.sampled_from(ZONES[1:-1]), min_size=len(times), max_size=len(times)))
        times = pd.Series([t.tz_convert(z) for t, z in zip(times, zones, strict=True)], dtype=object)
    else:
        times = times.dt.tz_localize(None) if zone is None else times.dt.tz_convert(zone)
    frame = pd.DataFrame(
        {
            "a": pd.Series([r[0] for r in rows], dtype="int64"),
            "b": pd.Series([r[1] for r in rows], dtype="str"),
            "event_timestamp": times,
        }
    )
    frame["label"] = range(len(frame))
    if draw(st.booleans()):
        return frame
    with warnings.catch_warnings():  # pyarrow reads tz-aware columns through a Series.values pandas 3 deprecates
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return pa.Table.from_pandas(frame, preserve_index=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity=entity_frames(), chosen=views(), semi_join=st.booleans())
def test_matches_the_reference_join(entity: Any, chosen: list[ViewSource], semi_join: bool) -> None:
    with mock.patch.object(offline, "SEMI_JOIN_RATIO", 0 if semi_join else 10**9):
        result = get_historical_features(entity, chosen)
    expected = acceptable(entity, chosen)
    frame = entity if isinstance(entity, pd.DataFrame) else entity.to_pandas()
    assert result.num_rows == len(frame)
    assert result.column("label").to_pylist() == list(frame["label"])
    assert [micros(t) for t in result.column("event_timestamp").to_pylist()] == [
        micros(t) for t in frame["event_timestamp"]
    ]
    for i, row in enumerate(result.to_pylist()):
        for v, view in enumerate(chosen):
            got = tuple(row[f] for f in view.features)
            assert got in expected[i][v], f"row {i} view {view.name}: {got} not in {expected[i][v]}"
