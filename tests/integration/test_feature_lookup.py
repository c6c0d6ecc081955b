"""Endpoints with feature lookup: requests carry entity keys, the router adds the online features, the
model answers on them, the served vectors are logged, and `skew` joins them back to the offline values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strato.client import Client
from strato.config import Settings
from strato.lake.tables import LakeTables
from strato.specs.endpoint import Endpoint
from strato.specs.features import Entity, FeatureService, FeatureView
from tests.helpers import wait_until
from tests.integration.conftest import control_plane
from tests.integration.test_endpoints import COLUMNS, _iris, in_service, invoke, save_sklearn


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Client, Path]]:
    from sklearn.linear_model import LogisticRegression

    from tests.conftest import warm_pools

    root = tmp_path_factory.mktemp("lookup")
    model = save_sklearn(root / "model", LogisticRegression(max_iter=500))
    with warm_pools(), control_plane(root / "home") as (settings, client):
        x, _ = _iris()
        x["flower_id"] = range(len(x))
        x["event_timestamp"] = datetime.now(UTC) - timedelta(days=1)
        LakeTables(settings.resolved_lake_url).create("flowers", x)
        client.features.apply(
            Entity(name="flower", join_keys=["flower_id"]),
            FeatureView(name="measurements", entities=["flower"], source="lake://flowers", ttl="30d",
                        features={c: "float64" for c in COLUMNS}),
            FeatureService(name="iris_model", features=[f"measurements:{c}" for c in COLUMNS]),
        )  # fmt: skip
        client.features.materialize()
        client.apply(Endpoint(name="iris", variants=[{"model": str(model)}], features={"service": "iris_model"}))
        try:
            in_service(client, "iris")
            yield settings, client, model
        finally:
            client.delete("endpoints", "iris")
            wait_until(lambda: not client.list("endpoints"), 60, what="endpoint deleted")


def test_requests_by_entity_get_online_features(plane: tuple[Settings, Client, Path]) -> None:
    _, client, _ = plane
    answer = invoke(client.url, "iris", {"dataframe_records": [{"flower_id": 0}, {"flower_id": 100}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [0, 2]
    missing = invoke(client.url, "iris", {"dataframe_records": [{"id": 0}]})
    assert missing.status_code == 400 and "entity rows lack 'flower_id'" in missing.json()["error"]["message"]


def test_skew_joins_served_values_back_to_offline(plane: tuple[Settings, Client, Path]) -> None:
    _, client, _ = plane
    ten = {"dataframe_records": [{"flower_id": i} for i in range(10)]}
    for _ in range(3):
        assert invoke(client.url, "iris", ten).status_code == 200
    clean = client.features.skew("iris_model", endpoint="iris")
    assert clean["rows"] >= 30
    assert {f: r["mismatch_rate"] for f, r in clean["features"].items()} == {c: 0.0 for c in COLUMNS}

    # A value pushed online only (never reaching the lake) is skew: served, but not what training sees.
    row = {"flower_id": 3, "event_timestamp": datetime.now(UTC), "sepal_length": 50.0, "sepal_width": 3.0,
           "petal_length": 1.4, "petal_width": 0.2}  # fmt: skip
    client.features.push("measurements", [row])
    since = datetime.now(UTC).isoformat()
    assert invoke(client.url, "iris", ten).status_code == 200
    report = client.features.skew("iris_model", endpoint="iris", since=since)
    assert report["rows"] == 10
    assert report["features"]["sepal_length"]["mismatch_rate"] == pytest.approx(0.1)
    assert report["features"]["sepal_length"]["distance"] == pytest.approx(0.1)
    assert report["features"]["petal_width"]["mismatch_rate"] == 0.0
