"""Materialization: the latest value of each entity in a time range, from a view's lake table into the
online store (Feast's ``materialize`` and ``materialize-incremental``).

Crash-safe by construction: the online store applies a row only when it is not older than what it holds
(newer wins), so re-running any range converges to the same state, and a view's watermark
(``status.materialized.until`` in the metadata store) moves only after the whole view is written. A
materialization killed half-way leaves each online row at a value the view really had; the next
incremental run starts from the old watermark and finishes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strato.errors import InvalidArgument, NotFound
from strato.features.catalog import FeatureCatalog
from strato.features.offline import ViewSource, latest_per_entity
from strato.features.online import OnlineStore, entity_key
from strato.lake.tables import LakeTables, parse_uri
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.specs.features import FeatureView
from strato.store.metadata import MetadataStore

Progress = Callable[[str, int], None]  # (view, rows written so far)


def as_utc(value: datetime | str | float | None) -> datetime | None:
    """A datetime, ISO text or epoch seconds as an aware UTC datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(f"{value!r} is not a time: write ISO 8601, e.g. 2026-01-31T12:00:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def view_source(view: FeatureView, join_keys: tuple[str, ...], lake: LakeTables, **extra: Any) -> ViewSource:
    """A view's lake table as the offline engine's source, pinned to a version (the view's, or the latest)."""
    location, version = lake.resolve(view.source)
    fields: dict[str, Any] = {
        "name": view.name,
        "join_keys": join_keys,
        "timestamp_field": view.timestamp_field,
        "created_timestamp_field": view.created_timestamp_field,
        "ttl": view.ttl,
        "features": tuple(f.name for f in view.features),
        "source": location,
        "version": version,
        "storage_options": lake.storage_options,
    }
    return ViewSource(**{**fields, **extra})


@dataclass
class ViewResult:
    view: str
    rows: int
    start: str | None
    end: str
    version: int
    seconds: float


def write_view(
    source: ViewSource, store: OnlineStore, start: datetime | None, end: datetime, progress: Progress | None = None
) -> int:
    """Stream the latest row per entity in [start, end) into the online store; returns rows written."""
    reader = latest_per_entity(source, start, end)
    written = 0
    for batch in reader:
        if batch.num_rows == 0:
            continue
        columns = batch.to_pydict()
        key_columns = [columns[k] for k in source.join_keys]
        keys = [entity_key(values) for values in zip(*key_columns, strict=True)]
        stamps = [ts.timestamp() for ts in columns["event_timestamp"]]
        features = list(source.features)
        rows = list(zip(*(columns[f] for f in features), strict=True))
        store.write(source.name, keys, stamps, rows, features=features)
        written += batch.num_rows
        if progress is not None:
            progress(source.name, written)
    return written


class Materializer:
    """Runs materializations and keeps each view's watermark and history in the metadata store."""

    def __init__(
        self,
        store: MetadataStore,
        lake: LakeTables,
        online: OnlineStore,
        catalog: Callable[[], FeatureCatalog],
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.lake = lake
        self.online = online
        self.catalog = catalog
        self.clock = clock

    def targets(self, names: list[str] | None) -> list[FeatureView]:
        catalog = self.catalog()
        if names:
            views = [catalog.view(n) for n in names]
            offline = [v.name for v in views if not v.online]
            if offline:
                raise InvalidArgument(f"feature view {offline[0]!r} is offline only (online: false)")
            return views
        views = [v for v in catalog.views.values() if v.online]
        if not views:
            raise NotFound("no online feature views to materialize; apply one with online: true")
        return views

    def run(
        self,
        start: datetime | str | None,
        end: datetime | str | None,
        views: list[str] | None = None,
        *,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> list[ViewResult]:
        """Materialize ``views`` (default every online view) over [start, end); ``incremental`` starts each
        view at its watermark (from the beginning the first time) and ends now."""
        end_at = as_utc(end) or datetime.fromtimestamp(self.clock(), UTC)
        catalog = self.catalog()
        results = []
        for view in self.targets(views):
            record = self.store.get(FeatureView.KIND, view.name)
            watermark = (record.status.get("materialized") or {}).get("until")
            start_at = as_utc(watermark) if incremental else as_utc(start)
            if start_at is not None and start_at >= end_at:
                if incremental:
                    continue
                raise InvalidArgument(f"start {start_at.isoformat()} is not before end {end_at.isoformat()}")
            source = view_source(view, catalog.join_keys(view), self.lake)
            began = time.perf_counter()
            rows = write_view(source, self.online, start_at, end_at, progress)
            result = ViewResult(
                view.name,
                rows,
                start_at.isoformat() if start_at else None,
                end_at.isoformat(),
                int(source.version or 0),
                round(time.perf_counter() - began, 3),
            )
            self._record(view.name, result)
            results.append(result)
        return results

    def _record(self, name: str, result: ViewResult) -> None:
        record = self.store.get(FeatureView.KIND, name)
        status = dict(record.status)
        previous = (status.get("materialized") or {}).get("until")
        until = result.end if previous is None or as_utc(previous) < as_utc(result.end) else previous  # type: ignore[operator]
        entry = {**result.__dict__, "at": self.clock()}
        status["materialized"] = {"until": until, "at": entry["at"], "rows": result.rows, "version": result.version}
        status["materializations"] = [*status.get("materializations", [])[-9:], entry]
        self.store.update_status(record.uid, status)
        view = FeatureView.model_validate(record.spec)
        table = parse_uri(view.source).name
        lineage = Lineage(self.store)  # the lake table version the online values came from
        source = (kinds.DATASET, f"lake://{table}@v{result.version}")
        lineage.node(*source, f"lake://{table}", table=table, version=result.version)
        lineage.node(kinds.FEATURE_VIEW, name, name)
        lineage.link(source, (kinds.FEATURE_VIEW, name), kinds.SOURCE_OF)
