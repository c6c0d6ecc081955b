"""Feast's documented point-in-time join semantics, case by case, each with its answer written out by hand.

Feast's concept page "Point-in-time joins" shows a driver_hourly_stats view (trips_today, earnings_today,
ttl 2 hours) joined onto an entity dataframe (driver_id, event_timestamp, trip_success): Feast scans
backward from each entity row's time up to the ttl; the ttl is relative to each row, not to now; the row
older than the earliest feature row gets nulls, and so does the row whose latest feature row is 11 hours
old. The data below is made up in that shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from strato.features.offline import ViewSource, get_historical_features

TS = pa.timestamp("us", tz="UTC")


def t(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2021, 4, 12, hour, minute, second, tzinfo=UTC)


def source(columns: dict[str, list[Any]]) -> pa.Table:
    return pa.table({name: pa.array(values, TS) if "timestamp" in name else values for name, values in columns.items()})


DRIVER_HOURLY_STATS = source(
    {
        "driver_id": [1001, 1002, 1001, 1002, 1001, 1002],
        "event_timestamp": [t(10), t(10), t(11), t(12), t(12), t(13)],
        "trips_today": [3, 1, 5, 4, 6, 7],
        "earnings_today": [36.5, 12.0, 60.25, 48.0, 71.5, 83.0],
    }
)


def driver_stats(ttl: float | None = 2 * 3600, table: pa.Table = DRIVER_HOURLY_STATS) -> ViewSource:
    return ViewSource(
        name="driver_hourly_stats",
        join_keys=("driver_id",),
        timestamp_field="event_timestamp",
        features=("trips_today", "earnings_today"),
        source=table,
        ttl=ttl,
    )


def rows_of(table: pa.Table, *columns: str) -> list[tuple[Any, ...]]:
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_the_documented_driver_example() -> None:
    entity_df = pd.DataFrame(
        {
            "event_timestamp": [t(9), t(12, 30), t(11, 15), t(13, 5), t(23)],
            "driver_id": [1001, 1002, 1001, 1002, 1001],
            "trip_success": [False, True, True, True, False],
        }
    )
    training_df = get_historical_features(entity_df, [driver_stats()])
    assert training_df.column_names == [
        "event_timestamp", "driver_id", "trip_success", "trips_today", "earnings_today",
    ]  # fmt: skip
    assert rows_of(training_df, "driver_id", "trip_success", "trips_today", "earnings_today") == [
        (1001, False, None, None),  # older than the earliest feature row
        (1002, True, 4, 48.0),  # the 12:00 row
        (1001, True, 5, 60.25),  # the 11:00 row
        (1002, True, 7, 83.0),  # the 13:00 row
        (1001, False, None, None),  # the latest row (12:00) is 11 hours old, past the 2 hour ttl
    ]


def test_ttl_is_relative_to_each_entity_row_not_to_now() -> None:
    entity_df = pd.DataFrame(
        {
            "driver_id": [1001, 1001, 1001, 1001],
            "event_timestamp": [t(12, 59, 59), t(14), t(14, 0, 1), t(13)],
        }
    )
    result = get_historical_features(entity_df, [driver_stats(ttl=2 * 3600)])
    assert rows_of(result, "trips_today") == [
        (6,),  # the 12:00 row, 59 minutes old
        (6,),  # exactly 2 hours old: still valid
        (None,),  # 2 hours and 1 second old: expired
        (6,),
    ]
    no_limit = get_historical_features(entity_df, [driver_stats(ttl=None)])
    assert rows_of(no_limit, "trips_today") == [(6,), (6,), (6,), (6,)]


def test_no_feature_row_from_the_future_leaks_in() -> None:
    entity_df = pd.DataFrame({"driver_id": [1002, 1002, 1002], "event_timestamp": [t(11, 59, 59), t(12), t(9, 59)]})
    result = get_historical_features(entity_df, [driver_stats()])
    assert rows_of(result, "trips_today", "earnings_today") == [(1, 12.0), (4, 48.0), (None, None)]


def test_equal_event_times_are_broken_by_the_created_timestamp() -> None:
    corrected = source(
        {
            "driver_id": [1001, 1001, 1001],
            "event_timestamp": [t(10), t(10), t(10)],
            "created_timestamp": [t(10, 5), t(10, 30), t(10, 10)],
            "trips_today": [3, 4, 9],
            "earnings_today": [36.5, 40.0, 99.0],
        }
    )
    view = ViewSource(
        "driver_hourly_stats", ("driver_id",), "event_timestamp", ("trips_today", "earnings_today"), corrected,
        created_timestamp_field="created_timestamp", ttl=7200,
    )  # fmt: skip
    entity_df = pd.DataFrame({"driver_id": [1001], "event_timestamp": [t(11)]})
    assert rows_of(get_historical_features(entity_df, [view]), "trips_today", "earnings_today") == [(4, 40.0)]


def test_an_entity_without_data_gets_nulls() -> None:
    entity_df = pd.DataFrame({"driver_id": [1003, 1001], "event_timestamp": [t(12), t(12)]})
    result = get_historical_features(entity_df, [driver_stats()])
    assert rows_of(result, "driver_id", "trips_today", "earnings_today") == [(1003, None, None), (1001, 6, 71.5)]


def test_the_latest_row_wins_even_when_its_value_is_null() -> None:
    table = source(
        {
            "driver_id": [1001, 1001],
            "event_timestamp": [t(10), t(11)],
            "trips_today": [3, None],
            "earnings_today": [36.5, 50.0],
        }
    )
    entity_df = pd.DataFrame({"driver_id": [1001], "event_timestamp": [t(11, 30)]})
    result = get_historical_features(entity_df, [driver_stats(table=table)])
    assert rows_of(result, "trips_today", "earnings_today") == [(None, 50.0)]


def test_several_views_each_with_its_own_keys_and_ttl() -> None:
    customer_profile = source(
        {
            "customer_id": ["c1", "c2"],
            "event_timestamp": [t(1), t(11)],
            "current_balance": [120.0, 35.5],
            "lifetime_trip_count": [40, 2],
        }
    )
    profile = ViewSource(
        "customer_profile", ("customer_id",), "event_timestamp", ("current_balance", "lifetime_trip_count"),
        customer_profile, ttl=24 * 3600,
    )  # fmt: skip
    entity_df = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1001],
            "customer_id": ["c1", "c2", "c3"],
            "event_timestamp": [t(11, 30), t(10, 30), t(12, 30)],
        }
    )
    result = get_historical_features(entity_df, [driver_stats(), profile])
    assert result.column_names == [
        "driver_id", "customer_id", "event_timestamp",
        "trips_today", "earnings_today", "current_balance", "lifetime_trip_count",
    ]  # fmt: skip
    assert rows_of(result, *result.column_names[3:]) == [
        (5, 60.25, 120.0, 40),
        (1, 12.0, None, None),  # c2's profile is written at 11:00, after this row
        (6, 71.5, None, None),  # c3 has no profile
    ]


def test_full_feature_names_come_from_output_names() -> None:
    view = ViewSource(
        "driver_hourly_stats", ("driver_id",), "event_timestamp", ("trips_today",), DRIVER_HOURLY_STATS,
        output_names=("driver_hourly_stats__trips_today",),
    )  # fmt: skip
    entity_df = pd.DataFrame({"driver_id": [1001], "event_timestamp": [t(12)]})
    result = get_historical_features(entity_df, [view])
    assert rows_of(result, "driver_hourly_stats__trips_today") == [(6,)]
