"""Offline retrieval for training: point-in-time correct feature values for entity rows (or for every
entity over a time range), on-demand features computed over the result, and the lake versions read, so a
saved training dataset's lineage can point at each source's exact version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from strato.errors import InvalidArgument
from strato.features.catalog import FeatureCatalog
from strato.features.materialize import as_utc, view_source
from strato.features.offline import ViewSource, entity_rows_between, get_historical_features
from strato.lake.tables import LakeTables, parse_uri
from strato.specs.expressions import evaluate


@dataclass
class Retrieval:
    table: pa.Table
    sources: list[dict[str, Any]] = field(default_factory=list)  # {view, table, version} of each view read
    features: list[str] = field(default_factory=list)

    def to_pandas(self) -> Any:
        return self.table.to_pandas()


def _entity_rows(entity_rows: Any, lake: LakeTables) -> tuple[Any, dict[str, Any] | None]:
    """A lake table address becomes that table (at its version); other inputs pass through."""
    if isinstance(entity_rows, str) and entity_rows.startswith("lake://"):
        ref = parse_uri(entity_rows)
        location, version = lake.resolve(entity_rows)
        table = lake.read(ref.name, version=version)
        return table, {"view": None, "table": ref.name, "version": version, "location": location}
    return entity_rows, None


def historical_features(
    catalog: FeatureCatalog,
    lake: LakeTables,
    entity_rows: Any,
    features: list[str] | str,
    *,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> Retrieval:
    plan = catalog.plan(features, full_feature_names=full_feature_names)
    sources: list[ViewSource] = [
        view_source(vp.view, vp.join_keys, lake, features=tuple(vp.features), output_names=tuple(vp.output_names))
        for vp in plan.views
    ]
    used = [
        {"view": s.name, "table": parse_uri(catalog.view(s.name).source).name, "version": s.version} for s in sources
    ]
    if entity_rows is None:
        start_at, end_at = as_utc(start), as_utc(end)
        if start_at is None or end_at is None:
            raise InvalidArgument("without entity rows, give start and end: every entity's rows in that range")
        if plan.on_demand and plan.request_fields:
            raise InvalidArgument(
                f"on-demand features need request fields ({', '.join(plan.request_fields)}); give entity rows"
            )
        rows: Any = entity_rows_between(sources, start_at, end_at)
        timestamp_column = "event_timestamp"
    else:
        rows, entity_source = _entity_rows(entity_rows, lake)
        if entity_source is not None:
            used.append(entity_source)
    table = get_historical_features(rows, sources, timestamp_column=timestamp_column)
    table = _with_on_demand(table, plan)
    return Retrieval(table, used, list(plan.outputs))


def _with_on_demand(table: pa.Table, plan: Any) -> pa.Table:
    """Compute on-demand features over the joined columns, then drop the columns fetched only for them."""
    import numpy as np

    for od in plan.on_demand:
        missing = [col for col in od.inputs.values() if col not in table.column_names]
        if missing:
            raise InvalidArgument(
                f"on-demand view {od.view.name!r} needs {', '.join(repr(m) for m in missing)} in the entity rows"
            )
        inputs = {
            name: table.column(col).to_numpy(zero_copy_only=False).astype("float64") for name, col in od.inputs.items()
        }
        for feature, name in zip(od.features, od.output_names, strict=True):
            values = np.broadcast_to(np.asarray(evaluate(feature.expression, inputs)), (table.num_rows,))
            array = pa.array(values, from_pandas=True)  # NaN from a missing input becomes null
            table = table.append_column(name, array)
    hidden = [c for c in table.column_names if c.startswith("__")]
    return table.drop_columns(hidden) if hidden else table
