"""Push: streaming updates of a feature view (Feast's push sources, SageMaker's PutRecord), to the online
store, the view's lake table, or both. Online, an older event time never overwrites a newer value
(SageMaker's rule); offline, rows are appended with the lake table's schema enforced.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from strato.errors import InvalidArgument
from strato.features.catalog import FeatureCatalog
from strato.features.online import OnlineStore, entity_key
from strato.lake.tables import LakeTables, as_arrow, parse_uri

PushTarget = Literal["online", "offline", "both"]


def _conform(table: pa.Table, schema: pa.Schema, view: str) -> pa.Table:
    """Pushed rows (often JSON: times as ISO text, ints as floats) cast to the lake table's column types."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        try:
            columns.append(column if column.type == field.type else pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidArgument(f"push to {view!r}: column {field.name!r} is not {field.type}: {exc}") from None
    return pa.Table.from_arrays(columns, schema=schema)


def push(
    catalog: FeatureCatalog,
    lake: LakeTables,
    online: OnlineStore,
    view_name: str,
    data: Any,
    to: PushTarget = "online",
) -> dict[str, Any]:
    if to not in ("online", "offline", "both"):
        raise InvalidArgument(f"push to {to!r}: choose online, offline or both")
    view = catalog.view(view_name)
    keys = catalog.join_keys(view)
    table = as_arrow(data) if not isinstance(data, list) else pa.Table.from_pylist(data)
    needed = [*keys, view.timestamp_field, *(f.name for f in view.features)]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InvalidArgument(
            f"push to {view_name!r}: the rows lack {', '.join(repr(m) for m in missing)} "
            f"(a row needs the join keys, {view.timestamp_field!r} and every feature of the view)"
        )
    result: dict[str, Any] = {"view": view_name, "rows": table.num_rows}
    if to in ("online", "both"):
        if not view.online:
            raise InvalidArgument(f"feature view {view_name!r} is offline only (online: false); push to offline")
        stamps = table.column(view.timestamp_field)
        if not pa.types.is_timestamp(stamps.type):
            stamps = pc.cast(stamps, pa.timestamp("us", tz="UTC"))
        elif stamps.type.tz is None:
            stamps = pc.assume_timezone(stamps, "UTC")
        seconds = [ts.timestamp() for ts in stamps.to_pylist()]
        columns = {c: table.column(c).to_pylist() for c in needed}
        entity = [entity_key(v) for v in zip(*(columns[k] for k in keys), strict=True)]
        features = [f.name for f in view.features]
        rows = list(zip(*(columns[f] for f in features), strict=True))
        applied = online.write(view_name, entity, seconds, rows, features=features)
        result["online_written"] = applied
        result["online_skipped_older"] = table.num_rows - applied
    if to in ("offline", "both"):
        ref = parse_uri(view.source)
        if ref.version is not None:
            raise InvalidArgument(f"feature view {view_name!r} reads a pinned version ({view.source}); push online")
        result["offline_version"] = lake.append(ref.name, _conform(table, lake.arrow_schema(ref.name), view_name))
    return result
