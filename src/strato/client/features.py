"""The feature store from Python. Definitions, materialization and pushes go through the control plane;
the data paths read storage directly, as Feast's SDK does: offline retrieval runs DuckDB over the lake
tables in this process, and online reads go straight to the online store (over REST only when the
store is a SQLite file this machine cannot see)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from strato.client.http import Transport
from strato.features.catalog import FeatureCatalog
from strato.features.historical import Retrieval, historical_features
from strato.features.online import open_online_store
from strato.features.online_features import OnlineFeatures
from strato.lake.tables import LakeTables
from strato.specs.base import ResourceSpec
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView

# Apply order: what a definition refers to goes first.
_ORDER = {Entity.KIND: 0, FeatureView.KIND: 1, OnDemandFeatureView.KIND: 2, FeatureService.KIND: 3}


def _reachable(url: str) -> bool:
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).parent.exists()


class FeaturesClient:
    def __init__(self, transport: Transport, *, catalog_ttl: float = 10.0, clock: Callable[[], float] = time.time):
        self.transport = transport
        self.catalog_ttl = catalog_ttl  # definitions applied elsewhere are seen after this long
        self.clock = clock
        self._catalog: FeatureCatalog | None = None
        self._fetched_at = 0.0
        self._info: dict[str, Any] = {}
        self._online: OnlineFeatures | None = None

    # Definitions ---------------------------------------------------------------------------------
    def apply(self, *specs: ResourceSpec) -> list[dict[str, Any]]:
        """Apply definitions in dependency order (entities, views, on-demand views, services)."""
        results = []
        for spec in sorted(specs, key=lambda s: _ORDER.get(s.KIND, 9)):
            body = spec.model_dump(mode="json")
            results.append(self.transport.json("POST", "/api/v1/apply", json=body))
        self._catalog = None
        return results

    def catalog(self, *, refresh: bool = False) -> FeatureCatalog:
        if refresh or self._catalog is None or self.clock() - self._fetched_at > self.catalog_ttl:
            self._info = dict(self.transport.json("GET", "/api/v1/features/catalog"))
            self._catalog = FeatureCatalog.from_json(self._info["catalog"])
            self._fetched_at = self.clock()
        return self._catalog

    def revisions(self, kind: str, name: str) -> list[dict[str, Any]]:
        return list(self.transport.json("GET", f"/api/v1/features/{kind}/{name}/revisions"))

    # Online --------------------------------------------------------------------------------------
    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        features: list[str] | str,
        *,
        full_feature_names: bool = False,
        with_status: bool = False,
    ) -> dict[str, Any]:
        """``{column: [values]}`` for the entity rows; ``features`` is a list of VIEW:FEATURE or the name of a
        feature service. Values older than their view's TTL come back as None."""
        online = self._online_reader()
        if online is None:
            body = {
                "entity_rows" if not isinstance(entity_rows, Mapping) else "entities": entity_rows,
                "feature_service" if isinstance(features, str) else "features": features,
                "full_feature_names": full_feature_names,
                "with_status": with_status,
            }
            return dict(self.transport.json("POST", "/api/v1/features/online", json=body))
        return online.get(entity_rows, features, full_feature_names=full_feature_names, with_status=with_status)

    def _online_reader(self) -> OnlineFeatures | None:
        if self._online is None:
            self.catalog()
            url = self._info["online_store_url"]
            if not _reachable(url):
                return None
            self._online = OnlineFeatures(open_online_store(url), self.catalog, clock=self.clock)
        return self._online

    # Offline -------------------------------------------------------------------------------------
    def lake(self) -> LakeTables:
        """The workspace's lake tables, read and written directly."""
        self.catalog()
        return LakeTables(self._info["lake_url"])

    def get_historical_features(
        self,
        entity_rows: Any = None,
        features: list[str] | str = (),  # type: ignore[assignment]
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        start: Any = None,
        end: Any = None,
    ) -> Retrieval:
        """Point-in-time correct training data: for each entity row (pandas, Arrow or ``lake://TABLE``),
        each feature's latest value at or before the row's time, within its view's TTL. Without entity rows,
        every entity's events between ``start`` and ``end``."""
        return historical_features(
            self.catalog(refresh=True),
            self.lake(),
            entity_rows,
            list(features) if not isinstance(features, str) else features,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            start=start,
            end=end,
        )

    def save_dataset(self, name: str, retrieval: Retrieval) -> int:
        """Save a retrieval as a lake table (a training dataset) whose lineage names every source version."""
        lake = self.lake()
        version = lake.create(name, retrieval.table) if not lake.exists(name) else lake.overwrite(name, retrieval.table)
        self.transport.json(
            "POST", "/api/v1/features/datasets", json={"name": name, "version": version, "sources": retrieval.sources}
        )
        return version

    def skew(self, name: str, *, endpoint: str | None = None, since: Any = None) -> dict[str, Any]:
        """Training-serving skew of a feature service or view: the values endpoints served, joined back to
        the point-in-time offline values of the same entities at the same times."""
        from strato.features.skew import skew_report

        self.transport.json("POST", "/api/v1/features/log/flush")  # what the router has queued, written now
        return skew_report(self.catalog(refresh=True), self.lake(), name, endpoint=endpoint, since=since)

    # Data ----------------------------------------------------------------------------------------
    def materialize(
        self, start: Any = None, end: Any = None, views: list[str] | None = None, *, incremental: bool = False
    ) -> list[dict[str, Any]]:
        body = {"start": _iso(start), "end": _iso(end), "views": views, "incremental": incremental}
        answer = self.transport.json("POST", "/api/v1/features/materialize", json=body, timeout=3600.0)
        return list(answer["views"])

    def push(self, view: str, rows: Any, *, to: Literal["online", "offline", "both"] = "online") -> dict[str, Any]:
        """Send fresh rows (list of dicts or a DataFrame) to the online store, the view's lake table, or both."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        records = [{k: _iso(v) for k, v in row.items()} for row in rows]
        return dict(
            self.transport.json("POST", "/api/v1/features/push", json={"view": view, "rows": records, "to": to})
        )


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
