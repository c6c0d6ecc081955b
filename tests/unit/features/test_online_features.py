"""Planning feature references and reading online features: names, order, TTL, on-demand, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InvalidArgument, NotFound
from strato.features.catalog import FeatureCatalog
from strato.features.online import entity_key, open_online_store
from strato.features.online_features import NOT_FOUND, OUTSIDE_MAX_AGE, PRESENT, OnlineFeatures
from strato.specs.expressions import evaluate
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView

NOW = 1_800_000_000.0


def catalog() -> FeatureCatalog:
    driver = Entity(name="driver", join_keys=["driver_id"])
    rider = Entity(name="rider", join_keys=["rider_id"])
    stats = FeatureView(
        name="driver_stats",
        entities=["driver"],
        source="lake://d",
        ttl=3600,
        features={"conv_rate": "float64", "trips": "int64"},
    )
    rider_stats = FeatureView(name="rider_stats", entities=["rider"], source="lake://r", features={"trips": "int64"})
    trip = OnDemandFeatureView(
        name="trip",
        sources=["driver_stats"],
        request={"distance": "float64"},
        features=[{"name": "cost", "expression": "distance * conv_rate"}],
    )
    service = FeatureService(name="model", features=["driver_stats:conv_rate", "trip:cost"])
    return FeatureCatalog(
        entities={"driver": driver, "rider": rider},
        views={"driver_stats": stats, "rider_stats": rider_stats},
        services={"model": service},
        on_demand={"trip": trip},
    )


@pytest.fixture
def online(tmp_path: Path) -> OnlineFeatures:
    store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    store.write(
        "driver_stats",
        [entity_key([1]), entity_key([2])],
        [NOW - 60, NOW - 7200],  # driver 2's values are older than the view's 1 h TTL
        [(0.5, 10), (0.9, 20)],
        features=["conv_rate", "trips"],
    )
    store.write("rider_stats", [entity_key([7])], [NOW - 1e6], [(3,)], features=["trips"])
    snapshot = catalog()
    return OnlineFeatures(store, lambda: snapshot, clock=lambda: NOW)


def test_values_in_order_with_ttl_and_missing_entities(online: OnlineFeatures) -> None:
    got = online.get({"driver_id": [2, 1, 3]}, ["driver_stats:trips", "driver_stats:conv_rate"], with_status=True)
    assert got["driver_id"] == [2, 1, 3]
    assert got["trips"] == [None, 10, None]
    assert got["conv_rate"] == [None, 0.5, None]
    assert got["_status"]["trips"] == [OUTSIDE_MAX_AGE, PRESENT, NOT_FOUND]
    assert list(got) == ["driver_id", "trips", "conv_rate", "_status"]


def test_a_view_without_ttl_never_expires(online: OnlineFeatures) -> None:
    assert online.get([{"rider_id": 7}], ["rider_stats:trips"])["trips"] == [3]


def test_same_feature_name_in_two_views_needs_full_names(online: OnlineFeatures) -> None:
    refs = ["driver_stats:trips", "rider_stats:trips"]
    with pytest.raises(InvalidArgument, match="both be named 'trips'; ask with full_feature_names=True"):
        online.get([{"driver_id": 1, "rider_id": 7}], refs)
    got = online.get([{"driver_id": 1, "rider_id": 7}], refs, full_feature_names=True)
    assert got["driver_stats__trips"] == [10] and got["rider_stats__trips"] == [3]


def test_service_with_on_demand_feature(online: OnlineFeatures) -> None:
    got = online.get([{"driver_id": 1, "distance": 4.0}, {"driver_id": 3, "distance": 1.0}], "model")
    assert got["conv_rate"] == [0.5, None]
    assert got["cost"] == [2.0, None]  # a missing input gives a missing value


def test_on_demand_source_feature_not_asked_for_is_fetched_but_not_returned(online: OnlineFeatures) -> None:
    got = online.get([{"driver_id": 1, "distance": 2.0}], ["trip:cost"])
    assert got == {"driver_id": [1], "distance": [2.0], "cost": [1.0]}


def test_missing_join_key_or_request_field_is_named(online: OnlineFeatures) -> None:
    with pytest.raises(InvalidArgument, match="entity rows lack 'distance'"):
        online.get([{"driver_id": 1}], "model")
    with pytest.raises(InvalidArgument, match="entity rows lack 'driver_id'"):
        online.get([{"driver": 1}], ["driver_stats:trips"])


def test_unknown_names_say_what_exists(online: OnlineFeatures) -> None:
    with pytest.raises(NotFound, match="no feature view 'driver_stat'; did you mean 'driver_stats'"):
        online.get([{"driver_id": 1}], ["driver_stat:trips"])
    with pytest.raises(NotFound, match=r"has no feature 'trip'; did you mean 'trips'\? \(it has: conv_rate, trips\)"):
        online.get([{"driver_id": 1}], ["driver_stats:trip"])
    with pytest.raises(NotFound, match="no feature service 'modle'; did you mean 'model'"):
        online.get([{"driver_id": 1}], "modle")
    with pytest.raises(InvalidArgument, match="write VIEW:FEATURE"):
        online.get([{"driver_id": 1}], ["conv_rate"])


def test_expressions_are_vectorized_and_safe() -> None:
    import numpy as np

    out = evaluate("where(a > 1, a * b, -1)", {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])})
    assert out.tolist() == [-1.0, 8.0]
    with pytest.raises(KeyError):
        evaluate("a + c", {"a": 1.0})
