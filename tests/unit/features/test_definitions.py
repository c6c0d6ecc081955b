"""Feature definitions: checked against each other and their lake tables, versioned, protected from
breaking changes while in use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from strato.errors import Conflict, InvalidArgument, NotFound
from strato.features.definitions import FeatureDefinitions
from strato.lake.tables import LakeTables
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView
from strato.store.metadata import MetadataStore


@pytest.fixture
def defs(tmp_path: Path) -> FeatureDefinitions:
    lake = LakeTables(tmp_path / "lake")
    lake.create(
        "driver_stats",
        pd.DataFrame(
            {
                "driver_id": [1, 2],
                "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
                "conv_rate": [0.5, 0.7],
                "trips": [3, 4],
                "city": ["a", "b"],
            }
        ),
    )
    return FeatureDefinitions(MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}"), lake)


def view(**changes: object) -> FeatureView:
    spec = {
        "name": "driver_stats",
        "entities": ["driver"],
        "source": "lake://driver_stats",
        "ttl": "1d",
        "features": {"conv_rate": "float64", "trips": "int64"},
    }
    return FeatureView.model_validate({**spec, **changes})


def test_entity_join_key_defaults_to_its_name() -> None:
    assert Entity(name="driver_id").join_keys == ["driver_id"]
    assert Entity(name="driver", join_keys=["driver_id"]).join_keys == ["driver_id"]


@pytest.mark.parametrize("ttl", ["0s", "-5m", 0])
def test_ttl_zero_or_negative_is_refused(ttl: object) -> None:
    with pytest.raises(ValidationError, match="ttl") as info:
        view(ttl=ttl)
    assert "greater than zero" in str(info.value)


def test_source_must_be_a_lake_table() -> None:
    with pytest.raises(ValidationError, match="lake://TABLE"):
        view(source="s3://bucket/x.parquet")


def test_view_needs_its_entities_first(defs: FeatureDefinitions) -> None:
    with pytest.raises(InvalidArgument, match="entity 'driver', which does not exist; apply it first"):
        defs.apply(view())


def test_view_whose_table_lacks_the_timestamp_column(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    with pytest.raises(InvalidArgument, match="lake table 'driver_stats' has no column 'ts'") as info:
        defs.apply(view(timestamp_field="ts"))
    assert "event_timestamp" in info.value.message  # lists what the table has


def test_declared_type_must_fit_the_table(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    with pytest.raises(InvalidArgument, match="'city' is declared float64 but lake table 'driver_stats' holds string"):
        defs.apply(view(features={"city": "float64"}))


def test_service_names_a_feature_that_does_not_exist(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    defs.apply(view())
    with pytest.raises(NotFound, match="view 'driver_stats' has no feature 'conv_rat'; did you mean 'conv_rate'"):
        defs.apply(FeatureService(name="model", features=["driver_stats:conv_rat"]))


def test_revisions_count_changes_only(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    record, created = defs.apply(view())
    assert created and record.status["revision"] == 1
    same, created = defs.apply(view())
    assert not created and same.status["revision"] == 1
    changed, _ = defs.apply(view(ttl="2d"))
    assert changed.status["revision"] == 2
    history = defs.revisions("FeatureView", "driver_stats")
    assert [r["revision"] for r in history] == [1, 2]
    assert history[0]["spec"]["ttl"] == 86400 and history[1]["spec"]["ttl"] == 172800


def test_breaking_change_to_a_view_in_use_is_refused(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    defs.apply(view())
    defs.apply(view(features={"conv_rate": "float64"}))  # not in use yet: allowed
    defs.apply(view())
    defs.apply(FeatureService(name="model", features=["driver_stats:*"]))
    with pytest.raises(Conflict) as info:
        defs.apply(view(features={"conv_rate": "float64"}))
    message = info.value.message
    assert "in use by FeatureService 'model'" in message
    assert "feature 'trips' is removed" in message
    defs.apply(view(features={"conv_rate": "float64", "trips": "int64", "city": "string"}))  # adding is fine
    assert defs.get("FeatureView", "driver_stats").status["revision"] == 4  # the refused change left no revision


def test_entity_in_use_cannot_change_keys_or_be_deleted(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    defs.apply(view())
    defs.store.update_status(defs.get("FeatureView", "driver_stats").uid, {"revision": 1, "materialized": {}})
    with pytest.raises(Conflict, match="used by FeatureView 'driver_stats'"):
        defs.delete("Entity", "driver")
    with pytest.raises(Conflict, match="join keys change"):
        defs.apply(Entity(name="driver", join_keys=["id"]))


def test_on_demand_view_reads_only_known_names(defs: FeatureDefinitions) -> None:
    defs.apply(Entity(name="driver", join_keys=["driver_id"]))
    defs.apply(view())
    good = OnDemandFeatureView(
        name="trip",
        sources=["driver_stats"],
        request={"distance": "float64"},
        features=[{"name": "cost", "dtype": "float64", "expression": "distance * conv_rate"}],
    )
    defs.apply(good)
    bad = good.model_copy(update={"features": [good.features[0].model_copy(update={"expression": "speed * 2"})]})
    with pytest.raises(InvalidArgument, match="'speed' is neither a request field nor a feature"):
        defs.apply(bad)


def test_on_demand_expression_is_checked_at_parse() -> None:
    with pytest.raises(ValidationError, match="only these functions may be called"):
        OnDemandFeatureView(name="x", features=[{"name": "y", "expression": "__import__('os').system('true')"}])
    with pytest.raises(ValidationError, match="Attribute is not allowed"):
        OnDemandFeatureView(name="x", features=[{"name": "y", "expression": "a.b"}])
