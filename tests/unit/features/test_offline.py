"""The offline engine's contract: every error a user can hit (with its message), row order and duplicates,
views with different join keys, the ttl boundary, Delta sources at a version, the input kinds, types kept,
and the materialization and entity-range helpers."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

import strato.features.offline as offline
from strato.errors import InvalidArgument, NotFound
from strato.features.offline import ViewSource, entity_rows_between, get_historical_features, latest_per_entity

UTC_US = pa.timestamp("us", tz="UTC")


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 5, 1, hour, minute, second, micro, tzinfo=UTC)


def stats(rows: list[tuple[Any, ...]] | None = None) -> pa.Table:
    """driver_id, event_timestamp, created, trips, rate: a small driver stats source."""
    rows = rows or [
        (1, at(1), at(1), 10, 0.1),
        (1, at(3), at(3), 30, 0.3),
        (2, at(2), at(2), 20, 0.2),
    ]
    return pa.table(
        {
            "driver_id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], UTC_US),
            "created": pa.array([r[2] for r in rows], UTC_US),
            "trips": pa.array([r[3] for r in rows], pa.int64()),
            "rate": pa.array([r[4] for r in rows], pa.float64()),
        }
    )


def view(source: Any = None, **changes: Any) -> ViewSource:
    fields: dict[str, Any] = {
        "name": "driver_stats",
        "join_keys": ("driver_id",),
        "timestamp_field": "event_timestamp",
        "features": ("trips", "rate"),
        "source": stats() if source is None else source,
    }
    return ViewSource(**{**fields, **changes})


def entities(ids: list[Any], times: list[Any], **extra: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": ids, "event_timestamp": times, **extra})


# Errors -----------------------------------------------------------------------------------------------
def test_entity_rows_missing_a_join_key_name_it_and_the_columns_they_have() -> None:
    rows = pd.DataFrame({"rider": [1], "event_timestamp": [at(4)]})
    with pytest.raises(InvalidArgument, match=r"lack column\(s\) 'driver_id' \(join key of view 'driver_stats'\); "
                       r"they have: 'rider', 'event_timestamp'"):  # fmt: skip
        get_historical_features(rows, [view()])


def test_entity_rows_missing_the_timestamp_column() -> None:
    rows = pd.DataFrame({"driver_id": [1], "ts": [at(4)]})
    with pytest.raises(InvalidArgument, match=r"lack column\(s\) 'event_timestamp' \(the timestamp column\); "
                       r"they have: 'driver_id', 'ts'"):  # fmt: skip
        get_historical_features(rows, [view()])
    assert get_historical_features(rows, [view()], timestamp_column="ts").column("trips").to_pylist() == [30]


def test_a_timestamp_column_mixing_aware_and_naive_values_is_refused() -> None:
    rows = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [datetime(2024, 5, 1, 4), at(4)]}, dtype=object)
    with pytest.raises(InvalidArgument, match="timestamp column 'event_timestamp' mixes time-zone-aware and naive"):
        get_historical_features(rows, [view()])


def test_a_timestamp_column_of_numbers_is_refused() -> None:
    rows = pd.DataFrame({"driver_id": [1], "event_timestamp": [1_714_500_000]})
    with pytest.raises(InvalidArgument, match="timestamp column 'event_timestamp' is int64; give timestamps"):
        get_historical_features(rows, [view()])


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        (["event_timestamp"], "'event_timestamp'"),
        (["driver_id"], "'driver_id'"),
        (["trips", "rate"], "'trips', 'rate'"),
        (["created"], "'created'"),
    ],
)
def test_a_source_lacking_columns_names_the_view_and_the_missing_columns(drop: list[str], missing: str) -> None:
    source = stats().drop_columns(drop)
    with pytest.raises(InvalidArgument, match=rf"view 'driver_stats': the source lacks column\(s\) {missing}; it has"):
        get_historical_features(entities([1], [at(4)]), [view(source, created_timestamp_field="created")])


def test_a_source_time_column_that_is_not_a_time_is_refused() -> None:
    source = stats().set_column(1, "event_timestamp", pa.array(["x", "y", "z"]))
    with pytest.raises(InvalidArgument, match="view 'driver_stats': column 'event_timestamp' is string; it must be"):
        get_historical_features(entities([1], [at(4)]), [view(source)])


def test_two_output_columns_with_one_name_are_refused() -> None:
    other = view(name="other")
    with pytest.raises(InvalidArgument, match=r"two output columns are named 'trips' \(from view 'driver_stats', "
                       r"view 'other'\); give the views output_names"):  # fmt: skip
        get_historical_features(entities([1], [at(4)]), [view(), other])
    with pytest.raises(InvalidArgument, match=r"named 'trips' \(from the entity rows, view 'driver_stats'\)"):
        get_historical_features(entities([1], [at(4)], trips=[5]), [view()])
    renamed = view(name="other", output_names=("other_trips", "other_rate"))
    table = get_historical_features(entities([1], [at(4)]), [view(), renamed])
    assert table.column_names == ["driver_id", "event_timestamp", "trips", "rate", "other_trips", "other_rate"]


def test_output_names_must_match_the_features() -> None:
    with pytest.raises(InvalidArgument, match="view 'driver_stats': 1 output names for 2 features"):
        get_historical_features(entities([1], [at(4)]), [view(output_names=("x",))])


def test_a_negative_ttl_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="view 'driver_stats': ttl is -1 s"):
        get_historical_features(entities([1], [at(4)]), [view(ttl=-1)])


def test_join_keys_of_unjoinable_types_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="join key 'driver_id' is string in the entity rows, in view "
                       "'driver_stats' but int64; make them the same type"):  # fmt: skip
        get_historical_features(entities(["1"], [at(4)]), [view()])


def test_integer_keys_of_other_widths_and_string_kinds_join() -> None:
    source = stats().set_column(0, "driver_id", pa.array([1, 1, 2], pa.int16()))
    rows = pa.table({"driver_id": pa.array([1, 2], pa.uint32()), "event_timestamp": pa.array([at(4)] * 2, UTC_US)})
    assert get_historical_features(rows, [view(source)]).column("trips").to_pylist() == [30, 20]
    names = stats().set_column(0, "driver_id", pa.array(["a", "a", "b"], pa.large_string()))
    rows = pa.table({"driver_id": pa.array(["b", "a"]), "event_timestamp": pa.array([at(4)] * 2, UTC_US)})
    assert get_historical_features(rows, [view(names)]).column("trips").to_pylist() == [20, 30]
    categories = pd.DataFrame({"driver_id": pd.Categorical(["a", "b"]), "event_timestamp": [at(4)] * 2})
    assert get_historical_features(categories, [view(names)]).column("trips").to_pylist() == [30, 20]


def test_unknown_inputs_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="entity rows are a list; give a pandas DataFrame"):
        get_historical_features([{"driver_id": 1}], [view()])
    with pytest.raises(InvalidArgument, match="view 'driver_stats': source is a dict; give a Delta table path"):
        get_historical_features(entities([1], [at(4)]), [view({"a": 1})])
    with pytest.raises(InvalidArgument, match="view 'driver_stats': version applies to a Delta table source only"):
        get_historical_features(entities([1], [at(4)]), [view(version=1)])


def test_a_missing_delta_table_or_version_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="view 'driver_stats': no Delta table at"):
        get_historical_features(entities([1], [at(4)]), [view(str(tmp_path / "nope"))])
    write_deltalake(str(tmp_path / "t"), stats())
    with pytest.raises(NotFound, match=r"has no version 3 \(versions 0 to 0\)"):
        get_historical_features(entities([1], [at(4)]), [view(str(tmp_path / "t"), version=3)])


# Semantics --------------------------------------------------------------------------------------------
def test_rows_keep_their_order_duplicates_and_columns() -> None:
    times = [at(4), at(2, 30), at(4), at(0), at(4), at(1, 59)]
    rows = entities([2, 1, 1, 1, 2, 1], times, label=[0, 1, 2, 3, 4, 5])
    table = get_historical_features(rows, [view()])
    assert table.column_names == ["driver_id", "event_timestamp", "label", "trips", "rate"]
    assert table.column("label").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert table.column("trips").to_pylist() == [20, 10, 30, None, 20, 10]
    assert table.column("rate").to_pylist() == [0.2, 0.1, 0.3, None, 0.2, 0.1]
    assert table.column("event_timestamp").to_pylist() == times


def test_views_with_different_join_keys() -> None:
    trips = pa.table(
        {
            "driver_id": [1, 1, 2],
            "rider_id": ["r1", "r2", "r1"],
            "ts": pa.array([at(1), at(1), at(1)], UTC_US),
            "trips_together": [5, 6, 7],
        }
    )
    riders = pa.table({"rider_id": ["r1", "r2"], "ts": pa.array([at(2), at(5)], UTC_US), "rating": [4.5, 3.0]})
    views = [
        view(),
        ViewSource("pairs", ("driver_id", "rider_id"), "ts", ("trips_together",), trips),
        ViewSource("riders", ("rider_id",), "ts", ("rating",), riders),
    ]
    rows = pd.DataFrame(
        {"driver_id": [1, 2, 1, 3], "rider_id": ["r2", "r1", "r1", "r2"], "event_timestamp": [at(4)] * 4}
    )
    table = get_historical_features(rows, views)
    assert table.column("trips").to_pylist() == [30, 20, 30, None]
    assert table.column("trips_together").to_pylist() == [6, 7, 5, None]
    assert table.column("rating").to_pylist() == [None, 4.5, 4.5, None]


def test_ttl_boundary_a_value_exactly_ttl_old_still_counts() -> None:
    rows = entities([1, 1, 1], [at(4), at(4, 0, 0, 1), at(3, 30)])
    table = get_historical_features(rows, [view(ttl=3600)])
    assert table.column("trips").to_pylist() == [30, None, 30]
    fractional = get_historical_features(entities([1], [at(3, 0, 1, 500_000)]), [view(ttl=1.5)])
    assert fractional.column("trips").to_pylist() == [30]
    exact = get_historical_features(entities([1, 1], [at(3), at(3, 0, 0, 1)]), [view(ttl=0)])
    assert exact.column("trips").to_pylist() == [30, None]


def test_an_expired_latest_row_does_not_fall_back_to_nothing_newer() -> None:
    """The ttl applies to the latest row at or before the row's time; an older row is older still."""
    table = get_historical_features(entities([1], [at(5)]), [view(ttl=3600)])
    assert table.column("trips").to_pylist() == [None]


def test_a_null_feature_in_the_latest_row_is_returned_as_null() -> None:
    source = stats([(1, at(1), at(1), 10, 0.1), (1, at(3), at(3), None, 0.3)])
    table = get_historical_features(entities([1], [at(4)]), [view(source)])
    assert table.column("trips").to_pylist() == [None]
    assert table.column("rate").to_pylist() == [0.3]


def test_ties_in_event_time_go_to_the_larger_created_time() -> None:
    source = stats(
        [
            (1, at(3), at(5), 35, 0.5),
            (1, at(3), at(9), 39, 0.9),  # the correction written last
            (1, at(3), at(7), 37, 0.7),
            (1, at(3), None, 30, 0.0),  # no created time ranks lowest
            (1, at(4), at(4), 40, 0.4),
        ]
    )
    rows = entities([1, 1], [at(3, 30), at(4)])
    table = get_historical_features(rows, [view(source, created_timestamp_field="created")])
    assert table.column("trips").to_pylist() == [39, 40]


def test_null_keys_and_times_match_nothing() -> None:
    rows = pa.table(
        {"driver_id": pa.array([None, 1, 1], pa.int64()), "event_timestamp": pa.array([at(4), None, at(4)], UTC_US)}
    )
    source = stats([(None, at(1), at(1), 99, 9.9), (1, None, at(1), 98, 9.8), (1, at(1), at(1), 10, 0.1)])
    assert get_historical_features(rows, [view(source)]).column("trips").to_pylist() == [None, None, 10]


def test_time_zones_are_converted_and_naive_times_are_utc() -> None:
    paris = timezone(timedelta(hours=2))
    rows = pd.DataFrame(
        {"driver_id": [1, 1], "event_timestamp": pd.to_datetime([at(2, 30), at(3, 30)], utc=True).tz_convert(paris)}
    )
    table = get_historical_features(rows, [view()])
    assert table.schema.field("event_timestamp").type == UTC_US
    assert table.column("event_timestamp").to_pylist() == [at(2, 30), at(3, 30)]
    assert table.column("trips").to_pylist() == [10, 30]
    naive = entities([1, 1], [datetime(2024, 5, 1, 2, 59), datetime(2024, 5, 1, 3)])
    assert get_historical_features(naive, [view()]).column("trips").to_pylist() == [10, 30]
    zones = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [at(3).astimezone(paris), at(2, 59)]}, dtype=object)
    assert get_historical_features(zones, [view()]).column("trips").to_pylist() == [30, 10]
    text = entities([1, 1], ["2024-05-01T04:59:00+02:00", "2024-05-01 03:00"])
    assert get_historical_features(text, [view()]).column("trips").to_pylist() == [10, 30]


def test_source_times_in_any_unit_and_zone() -> None:
    base = stats()
    for kind in (pa.timestamp("ns"), pa.timestamp("s", tz="Asia/Tokyo"), pa.timestamp("ms", tz="America/Chicago")):
        source = base.set_column(1, "event_timestamp", base.column("event_timestamp").cast(kind))
        table = get_historical_features(entities([1, 1], [at(2, 59), at(3)]), [view(source)])
        assert table.column("trips").to_pylist() == [10, 30], kind
    dates = pa.table({"driver_id": [1], "day": pa.array([datetime(2024, 5, 1).date()]), "trips": [7]})
    daily = ViewSource("daily", ("driver_id",), "day", ("trips",), dates)
    result = get_historical_features(entities([1, 1], [at(0), datetime(2024, 4, 30, 23, tzinfo=UTC)]), [daily])
    assert result.column("trips").to_pylist() == [7, None]


def test_feature_types_are_kept() -> None:
    source = pa.table(
        {
            "driver_id": [1],
            "event_timestamp": pa.array([at(1)], UTC_US),
            "name": pa.array(["ann"], pa.large_string()),
            "score": pa.array([1.5], pa.float32()),
            "seen": pa.array([at(0)], pa.timestamp("ms", tz="Europe/Paris")),
            "tags": pa.array([["a", "b"]], pa.list_(pa.string())),
            "ok": [True],
        }
    )
    features = ("name", "score", "seen", "tags", "ok")
    table = get_historical_features(entities([1, 2], [at(2)] * 2), [view(source, features=features)])
    for name in features:
        assert table.schema.field(name).type == source.schema.field(name).type, name
    assert table.slice(0, 1).to_pylist()[0]["tags"] == ["a", "b"]
    assert table.column("seen").to_pylist()[1] is None


def test_entity_rows_as_pandas_arrow_or_a_delta_table(tmp_path: Path) -> None:
    frame = entities([2, 1], [at(4), at(2)], label=["x", "y"])
    arrow = pa.table({"driver_id": [2, 1], "event_timestamp": pa.array([at(4), at(2)], UTC_US), "label": ["x", "y"]})
    write_deltalake(str(tmp_path / "rows"), arrow)
    for rows in (frame, arrow, str(tmp_path / "rows")):
        table = get_historical_features(rows, [view()])
        assert table.column("trips").to_pylist() == [20, 10]
        assert table.column("label").to_pylist() == ["x", "y"]


def test_a_delta_source_is_read_at_its_version(tmp_path: Path) -> None:
    path = str(tmp_path / "driver_stats")
    write_deltalake(path, stats())
    write_deltalake(path, stats([(1, at(3, 30), at(3, 30), 35, 0.35)]), mode="append")
    rows = entities([1], [at(4)])
    assert get_historical_features(rows, [view(path, version=0)]).column("trips").to_pylist() == [30]
    assert get_historical_features(rows, [view(path, version=1)]).column("trips").to_pylist() == [35]
    assert get_historical_features(rows, [view(path)]).column("trips").to_pylist() == [35]


def test_a_parquet_dataset_source_skips_nothing_it_needs(tmp_path: Path) -> None:
    """Row groups outside the entity rows' time span (less the ttl) may be skipped; the answer stays the same."""
    rows = [(1, at(0) + timedelta(days=d), None, d, float(d)) for d in range(-40, 40)]
    for day in range(0, 80, 10):
        pq.write_table(stats(rows[day : day + 10]), tmp_path / f"part{day}.parquet")
    source = ds.dataset(tmp_path, format="parquet")
    table = get_historical_features(entities([1, 1, 2], [at(12), at(12) + timedelta(days=3), at(12)]), [view(source)])
    assert table.column("trips").to_pylist() == [0, 3, None]
    with_ttl = view(source, ttl=86_400 * 2)
    when = [at(0) - timedelta(days=30), at(0) + timedelta(days=60), at(0) + timedelta(days=5)]
    table = get_historical_features(entities([1, 1, 1], when), [with_ttl])
    assert table.column("trips").to_pylist() == [-30, None, 5]


def test_the_semi_join_on_keys_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = entities([1, 2, 3, 1], [at(4), at(4), at(4), at(2)])
    answers = []
    for ratio in (0, 10**9):  # always / never
        monkeypatch.setattr(offline, "SEMI_JOIN_RATIO", ratio)
        answers.append(get_historical_features(rows, [view()]).to_pylist())
    assert answers[0] == answers[1]
    assert [r["trips"] for r in answers[0]] == [30, 20, None, 10]


def test_no_views_no_rows_and_spill_settings(tmp_path: Path) -> None:
    table = get_historical_features(entities([1], [datetime(2024, 5, 1, 4)]), [])
    assert table.column_names == ["driver_id", "event_timestamp"]
    assert table.schema.field("event_timestamp").type == UTC_US
    empty = pa.table({"driver_id": pa.array([], pa.int64()), "event_timestamp": pa.array([], UTC_US)})
    result = get_historical_features(empty, [view()])
    assert result.num_rows == 0 and result.column_names[-2:] == ["trips", "rate"]
    spilled = get_historical_features(
        entities([1], [at(4)]), [view()], memory_limit="64MB", temp_dir=str(tmp_path / "spill")
    )
    assert spilled.column("trips").to_pylist() == [30]


def test_pandas_timezone_columns_raise_no_warning() -> None:
    rows = pd.DataFrame({"driver_id": [1], "event_timestamp": pd.to_datetime([at(4)], utc=True)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_historical_features(rows, [view()])


# Materialization and entity ranges ---------------------------------------------------------------------
def test_latest_per_entity_takes_the_latest_row_in_the_range() -> None:
    source = stats(
        [
            (1, at(1), at(1), 10, 0.1),
            (1, at(3), at(4), 31, 0.31),
            (1, at(3), at(6), 33, 0.33),
            (1, at(5), at(5), 50, 0.5),  # at the end: excluded
            (2, at(0), at(0), 20, 0.2),  # before the start: excluded
            (3, at(2), at(2), None, 0.4),
        ]
    )
    reader = latest_per_entity(view(source, created_timestamp_field="created"), at(1), at(5))
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema.names == ["driver_id", "event_timestamp", "trips", "rate"]
    assert reader.schema.field("event_timestamp").type == UTC_US
    rows = sorted(reader.read_all().to_pylist(), key=lambda r: r["driver_id"])
    assert rows == [
        {"driver_id": 1, "event_timestamp": at(3), "trips": 33, "rate": 0.33},
        {"driver_id": 3, "event_timestamp": at(2), "trips": None, "rate": 0.4},
    ]
    everything = latest_per_entity(view(source, created_timestamp_field="created"), None, at(6)).read_all()
    assert sorted(everything.to_pylist(), key=lambda r: r["driver_id"]) == [
        {"driver_id": 1, "event_timestamp": at(5), "trips": 50, "rate": 0.5},
        {"driver_id": 2, "event_timestamp": at(0), "trips": 20, "rate": 0.2},
        {"driver_id": 3, "event_timestamp": at(2), "trips": None, "rate": 0.4},
    ]


def test_latest_per_entity_streams_in_batches_from_delta(tmp_path: Path) -> None:
    n = 200_000
    source = pa.table(
        {
            "driver_id": pa.array(range(n), pa.int32()),
            "event_timestamp": pa.array([at(1)] * n, UTC_US),
            "name": pa.array(["x"] * n, pa.string()),
        }
    )
    write_deltalake(str(tmp_path / "t"), source)
    reader = latest_per_entity(view(str(tmp_path / "t"), features=("name",)), None, at(2))
    batches = list(reader)
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == n
    assert reader.schema == pa.schema(
        [("driver_id", pa.int32()), ("event_timestamp", UTC_US), ("name", pa.string())]
    )


def test_entity_rows_between_gives_distinct_keys_and_times_of_every_view() -> None:
    other = pa.table(
        {"driver_id": pa.array([2, 4], pa.int32()), "ts": pa.array([at(2), at(9)], UTC_US), "x": [1, 2]}
    )
    views = [view(), ViewSource("other", ("driver_id",), "ts", ("x",), other)]
    table = entity_rows_between(views, at(1), at(3))
    assert table.schema == pa.schema([("driver_id", pa.int64()), ("event_timestamp", UTC_US)])
    assert table.to_pylist() == [
        {"driver_id": 1, "event_timestamp": at(1)},
        {"driver_id": 2, "event_timestamp": at(2)},
        {"driver_id": 1, "event_timestamp": at(3)},
    ]
    joined = get_historical_features(table, [view(), view(name="o", output_names=("t2", "r2"))])
    assert joined.column("trips").to_pylist() == [10, 20, 30]


def test_entity_rows_between_needs_views_with_the_same_join_keys() -> None:
    riders = ViewSource("riders", ("rider_id",), "ts", ("rating",), pa.table({"rider_id": [1]}))
    with pytest.raises(InvalidArgument, match="views 'driver_stats' and 'riders' have different join keys "
                       r"\(driver_id vs rider_id\)"):  # fmt: skip
        entity_rows_between([view(), riders], at(0), at(5))
    with pytest.raises(InvalidArgument, match="needs at least one view"):
        entity_rows_between([], at(0), at(5))
