"""The feature store end to end on a real control plane: definitions from the SDK, point-in-time training
data from lake tables, a saved training dataset with lineage, materialization, online reads in-process and
over REST (SQLite and Redis), pushes with SageMaker's newer-wins rule, and refused breaking changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from strato.client import Client
from strato.config import Settings
from strato.errors import ErrorCode, StratoError
from strato.lake.tables import LakeTables
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView
from tests.integration.conftest import control_plane

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def definitions(ttl: str = "2h") -> list[object]:
    return [
        Entity(name="driver", join_keys=["driver_id"]),
        FeatureView(
            name="driver_stats",
            entities=["driver"],
            source="lake://driver_stats",
            created_timestamp_field="created",
            ttl=ttl,
            features={"conv_rate": "float64", "trips": "int64"},
        ),
        OnDemandFeatureView(
            name="trip",
            sources=["driver_stats"],
            request={"distance": "float64"},
            features=[{"name": "cost", "expression": "distance * conv_rate"}],
        ),
        FeatureService(name="eta_model", features=["driver_stats:conv_rate", "trip:cost"]),
    ]


def load_stats(settings: Settings) -> None:
    hours = [0, 1, 1, 3]  # driver 1 has two rows at 01:00: the later-created one wins
    LakeTables(settings.resolved_lake_url).create(
        "driver_stats",
        pd.DataFrame(
            {
                "driver_id": [1, 1, 1, 2],
                "event_timestamp": [T0 + timedelta(hours=h) for h in hours],
                "created": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0],
                "conv_rate": [0.1, 0.2, 0.25, 0.9],
                "trips": [1, 2, 3, 9],
            }
        ),
    )


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path_factory.mktemp("features") / "home") as (settings, client):
        load_stats(settings)
        client.features.apply(*definitions())  # type: ignore[arg-type]
        yield settings, client


def test_point_in_time_training_data(plane: tuple[Settings, Client]) -> None:
    _, client = plane
    rows = pd.DataFrame(
        {
            "driver_id": [1, 1, 2, 2, 3],
            "event_timestamp": [T0 + timedelta(minutes=m) for m in (30, 90, 30, 200 + 180, 60)],
            "distance": [10.0, 10.0, 1.0, 1.0, 1.0],
            "label": [0, 1, 0, 1, 0],
        }
    )
    got = client.features.get_historical_features(rows, "eta_model").to_pandas()
    assert got["label"].tolist() == [0, 1, 0, 1, 0]  # every row back, in order
    # 00:30 -> the 00:00 row; 01:30 -> the 01:00 row created last; driver 2 at 00:30: its only row is at
    # 03:00 (future); at 06:20 that row is older than the 2 h TTL; driver 3 has no rows.
    assert got["conv_rate"].tolist()[:2] == [0.1, 0.25]
    assert got["conv_rate"].isna().tolist() == [False, False, True, True, True]
    assert got["cost"].tolist()[:2] == pytest.approx([1.0, 2.5])


def test_every_entity_over_a_time_range_without_entity_rows(plane: tuple[Settings, Client]) -> None:
    _, client = plane
    got = client.features.get_historical_features(
        None, ["driver_stats:trips"], start=T0, end=T0 + timedelta(hours=2)
    ).to_pandas()
    # The events in [00:00, 02:00]: driver 1 at 00:00 and 01:00 (two rows at 01:00, one per time), each
    # with the value it had then.
    assert got[["driver_id", "trips"]].values.tolist() == [[1, 1], [1, 3]]


def test_training_dataset_lineage_points_at_source_versions(plane: tuple[Settings, Client]) -> None:
    settings, client = plane
    rows = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0 + timedelta(hours=2)]})
    retrieval = client.features.get_historical_features(rows, ["driver_stats:trips"])
    version = client.features.save_dataset("eta_training", retrieval)
    assert LakeTables(settings.resolved_lake_url).read("eta_training").to_pylist()[0]["trips"] == 3
    graph = client.lineage.get("dataset", f"lake://eta_training@v{version}", direction="upstream")
    names = {node.name for node in graph.nodes}
    assert {"lake://driver_stats", "driver_stats"} <= names


def test_materialize_then_read_online_in_process_and_over_rest(plane: tuple[Settings, Client]) -> None:
    settings, client = plane
    done = client.features.materialize(T0.isoformat(), (T0 + timedelta(hours=4)).isoformat())
    assert {v["view"]: v["rows"] for v in done} == {"driver_stats": 2}
    again = client.features.materialize(T0.isoformat(), (T0 + timedelta(hours=4)).isoformat())  # idempotent
    assert again[0]["rows"] == 2
    upstream = client.lineage.get("feature_view", "driver_stats", direction="upstream")
    assert "dataset:lake://driver_stats@v0" in {node.id for node in upstream.nodes}
    # Values are hours old on the wall clock, far beyond the 2 h TTL: a fresh push makes them current.
    now = datetime.now(UTC)
    client.features.push("driver_stats", [{"driver_id": 1, "event_timestamp": now, "conv_rate": 0.3, "trips": 4}])
    local = client.features.get_online_features([{"driver_id": 1, "distance": 2.0}, {"driver_id": 2, "distance": 1.0}],
                                                "eta_model", with_status=True)  # fmt: skip
    assert local["conv_rate"] == [0.3, None]
    assert local["_status"]["conv_rate"] == ["PRESENT", "OUTSIDE_MAX_AGE"]
    assert local["cost"] == [pytest.approx(0.6), None]
    rest = httpx.post(
        f"{client.url}/api/v1/features/online",
        json={"feature_service": "eta_model", "entities": {"driver_id": [1, 2], "distance": [2.0, 1.0]}},
        headers={"Authorization": f"Bearer {settings.token_path.read_text().strip()}"},
    )
    assert rest.status_code == 200 and rest.json()["conv_rate"] == local["conv_rate"]


def test_online_rest_errors_are_one_clear_message(plane: tuple[Settings, Client]) -> None:
    settings, client = plane
    auth = {"Authorization": f"Bearer {settings.token_path.read_text().strip()}"}
    url = f"{client.url}/api/v1/features/online"
    cases = [
        (b"{not json", auth, 400, "the request body is not JSON"),
        (b'{"features": ["driver_stats:trips"], "entity": {"driver_id": [1]}}', auth, 400, "unknown field 'entity'"),
        (b'{"features": ["driver_stats:trips"]}', auth, 400, "give entities"),
        (b'{"features": ["driver_stats:trip"], "entities": {"driver_id": [1]}}', auth, 404, "did you mean 'trips'"),
        (b'{"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}}', {"Authorization": "Bearer x"}, 401,
         "wrong API token"),
    ]  # fmt: skip
    for body, headers, status, message in cases:
        answer = httpx.post(url, content=body, headers=headers)
        assert answer.status_code == status and message in answer.json()["error"]["message"], answer.text


def test_push_never_lets_an_older_event_win(plane: tuple[Settings, Client]) -> None:
    _, client = plane
    now = datetime.now(UTC)
    new = {"driver_id": 5, "event_timestamp": now, "conv_rate": 0.8, "trips": 8}
    old = {**new, "event_timestamp": now - timedelta(minutes=5), "conv_rate": 0.1}
    assert client.features.push("driver_stats", [new])["online_written"] == 1
    answer = client.features.push("driver_stats", [old])
    assert answer["online_written"] == 0 and answer["online_skipped_older"] == 1
    assert client.features.get_online_features({"driver_id": [5]}, ["driver_stats:conv_rate"])["conv_rate"] == [0.8]


def test_push_to_both_appends_to_the_lake_table(plane: tuple[Settings, Client]) -> None:
    settings, client = plane
    lake = LakeTables(settings.resolved_lake_url)
    before = lake.version("driver_stats")
    row = {"driver_id": 6, "event_timestamp": T0 + timedelta(hours=5), "created": T0 + timedelta(hours=5),
           "conv_rate": 0.6, "trips": 6}  # fmt: skip
    answer = client.features.push("driver_stats", [row], to="both")
    assert answer["offline_version"] == before + 1 and answer["online_written"] == 1
    rows = pd.DataFrame({"driver_id": [6], "event_timestamp": [T0 + timedelta(hours=6)]})
    assert client.features.get_historical_features(rows, ["driver_stats:trips"]).to_pandas()["trips"].tolist() == [6]


def test_push_with_missing_columns_names_them(plane: tuple[Settings, Client]) -> None:
    _, client = plane
    with pytest.raises(Exception, match="the rows lack 'trips'"):
        client.features.push("driver_stats", [{"driver_id": 5, "event_timestamp": T0, "conv_rate": 0.8}])


def test_breaking_change_of_a_served_view_is_refused(plane: tuple[Settings, Client]) -> None:
    _, client = plane
    changed = FeatureView(
        name="driver_stats",
        entities=["driver"],
        source="lake://driver_stats",
        created_timestamp_field="created",
        ttl="2h",
        features={"conv_rate": "float64", "trips": "float64"},
    )
    with pytest.raises(StratoError, match="feature 'trips' changes type from int64 to float64") as info:
        client.features.apply(changed)
    assert info.value.code == ErrorCode.CONFLICT
    revisions = client.features.revisions("featureview", "driver_stats")
    assert [r["revision"] for r in revisions] == [1]


def test_redis_online_store_by_url(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:6379/0?prefix={prefix}"
    with control_plane(tmp_path / "home", online_store_url=url) as (settings, client):
        load_stats(settings)
        client.features.apply(*definitions(ttl="1000d"))  # type: ignore[arg-type]
        client.features.materialize(None, (T0 + timedelta(hours=4)).isoformat())
        got = client.features.get_online_features({"driver_id": [1, 2, 3]}, ["driver_stats:trips"])
        assert got["trips"] == [3, 9, None]
        client.delete("featureservices", "eta_model")
        client.delete("ondemandfeatureviews", "trip")
        client.delete("featureviews", "driver_stats")  # removes its online rows too
    import redis

    assert not list(redis.Redis.from_url("redis://127.0.0.1:6379/0").scan_iter(f"{prefix}:*"))
