"""Inputs of the offline engine made uniform before DuckDB sees them: entity rows as an Arrow table whose
timestamp column is ``timestamp[us, UTC]``, view sources as Arrow tables or datasets, and the checks that
give one clear message per mistake (a missing column, mixed time zones, join keys of unjoinable types).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from strato.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from strato.features.offline import ViewSource

UTC_US = pa.timestamp("us", tz="UTC")


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


# Delta tables ---------------------------------------------------------------------------------------
def _local_filesystem(uri: str) -> Any:
    """Arrow's own file system for a local table: deltalake's default one (its storage handler, called from
    Arrow's I/O threads) can abort the interpreter at exit when those threads outlive it (see lake/tables.py)."""
    path = uri.removeprefix("file://")
    if "://" in path:
        return None
    import pyarrow.fs as pafs

    return pafs.SubTreeFileSystem(str(Path(path).resolve()), pafs.LocalFileSystem())


def open_delta(uri: str, version: int | None, storage_options: dict[str, str] | None, what: str) -> Any:
    """A Delta table (at ``version``) as a pyarrow dataset: scans push projections and filters down to Parquet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        raise NotFound(f"{what}: no Delta table at {uri}") from None
    if version is not None:
        latest = table.version()
        if not 0 <= version <= latest:
            raise NotFound(f"{what}: the Delta table at {uri} has no version {version} (versions 0 to {latest})")
        table.load_as_version(version)
    return table.to_pyarrow_dataset(filesystem=_local_filesystem(uri))


def open_source(view: ViewSource) -> Any:
    """The view's rows as something DuckDB scans lazily: a pyarrow Table or Dataset."""
    import pyarrow.dataset as ds

    source = view.source
    if isinstance(source, str | Path):
        return open_delta(str(source), view.version, view.storage_options, f"view {view.name!r}")
    if view.version is not None:
        raise InvalidArgument(f"view {view.name!r}: version applies to a Delta table source only")
    if isinstance(source, pa.Table | ds.Dataset):
        return source
    if type(source).__name__ == "DataFrame" and hasattr(source, "columns"):  # pandas, without importing it
        return pa.Table.from_pandas(source, preserve_index=False)
    raise InvalidArgument(
        f"view {view.name!r}: source is a {type(source).__name__}; give a Delta table path, a pyarrow Table or Dataset"
    )


# Entity rows ----------------------------------------------------------------------------------------
def entity_table(entity_rows: Any, timestamp_column: str) -> pa.Table:
    """pandas, Arrow or a Delta table path as an Arrow table (timestamps not yet normalized)."""
    if isinstance(entity_rows, pa.Table):
        return entity_rows
    if isinstance(entity_rows, str | Path):
        return open_delta(str(entity_rows), None, None, "entity rows").to_table()
    if type(entity_rows).__name__ == "DataFrame" and hasattr(entity_rows, "columns"):
        if timestamp_column in entity_rows.columns and entity_rows[timestamp_column].dtype == object:
            _refuse_mixed_time_zones(entity_rows[timestamp_column], timestamp_column)
        try:
            with warnings.catch_warnings():  # pyarrow reads aware columns with a Series.values pandas 3 deprecates
                warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
                return pa.Table.from_pandas(entity_rows, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"entity rows cannot be read as a table: {exc}") from None
    raise InvalidArgument(
        f"entity rows are a {type(entity_rows).__name__}; "
        "give a pandas DataFrame, a pyarrow Table or a Delta table path"
    )


def _refuse_mixed_time_zones(column: Any, name: str) -> None:
    """Arrow would read a column of naive and aware datetimes with the first value's zone for all: refuse it."""
    kinds = {value.tzinfo is None for value in column if isinstance(value, datetime)}
    if len(kinds) == 2:
        raise InvalidArgument(
            f"timestamp column {name!r} mixes time-zone-aware and naive values; "
            "make them all aware or all naive (naive means UTC)"
        )


def to_utc(column: pa.ChunkedArray | pa.Array, what: str) -> pa.ChunkedArray:
    """Timestamps (any unit; naive = UTC, aware in any zone), dates or ISO 8601 text as ``timestamp[us, UTC]``."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_null(kind):
        # Timestamps hold UTC instants whatever their zone; a naive one is taken as UTC. Sub-microsecond
        # digits are dropped (truncated), as everywhere else in the engine.
        result = pc.cast(column, options=pc.CastOptions(UTC_US, allow_time_truncate=True))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        import pandas as pd

        try:
            parsed = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"{what} has text that is not an ISO 8601 time: {exc}") from None
        naive_utc = pa.array(parsed.dt.tz_localize(None))
        result = pc.cast(naive_utc, options=pc.CastOptions(UTC_US, allow_time_truncate=True))
    else:
        raise InvalidArgument(f"{what} is {kind}; give timestamps (naive ones are read as UTC), dates or ISO text")
    return result if isinstance(result, pa.ChunkedArray) else pa.chunked_array([result], UTC_US)


def require_entity_columns(table: pa.Table, timestamp_column: str, views: Sequence[ViewSource]) -> None:
    missing: dict[str, list[str]] = {}
    if timestamp_column not in table.column_names:
        missing[timestamp_column] = ["the timestamp column"]
    for view in views:
        for key in view.join_keys:
            if key not in table.column_names:
                missing.setdefault(key, []).append(f"join key of view {view.name!r}")
    if missing:
        what = "; ".join(f"{name!r} ({', '.join(why)})" for name, why in missing.items())
        raise InvalidArgument(f"entity rows lack column(s) {what}; they have: {_names(table.column_names)}")


# Sources --------------------------------------------------------------------------------------------
def check_view(view: ViewSource, schema: pa.Schema) -> None:
    """The source has every column the view names, and its time columns are times."""
    wanted = [view.timestamp_field, *view.join_keys, *view.features]
    if view.created_timestamp_field:
        wanted.append(view.created_timestamp_field)
    missing = [name for name in dict.fromkeys(wanted) if name not in schema.names]
    if missing:
        raise InvalidArgument(
            f"view {view.name!r}: the source lacks column(s) {_names(missing)}; it has: {_names(schema.names)}"
        )
    for field in (view.timestamp_field, view.created_timestamp_field):
        kind = schema.field(field).type if field else None
        if kind is not None and not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
            raise InvalidArgument(f"view {view.name!r}: column {field!r} is {kind}; it must be a timestamp or a date")


def check_view_fields(view: ViewSource) -> None:
    if not view.join_keys:
        raise InvalidArgument(f"view {view.name!r} has no join keys")
    if view.output_names is not None and len(view.output_names) != len(view.features):
        raise InvalidArgument(
            f"view {view.name!r}: {len(view.output_names)} output names for {len(view.features)} features"
        )
    if view.ttl is not None and view.ttl < 0:
        raise InvalidArgument(f"view {view.name!r}: ttl is {view.ttl} s; give a positive number of seconds or None")


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _kind(kind: pa.DataType) -> str:
    """A type as users think of it (pandas' strings arrive as large_string, categories as dictionaries)."""
    return "string" if _is_text(kind) else str(kind)


def key_cast(left: pa.DataType, right: pa.DataType, key: str, where: str) -> str | None:
    """The DuckDB type both sides of a join key are cast to, or None when they already match. Integers of
    different widths and the different string types join; anything else is refused."""
    if left == right:
        return None
    if pa.types.is_integer(left) and pa.types.is_integer(right):
        return "HUGEINT" if pa.uint64() in (left, right) else "BIGINT"
    if _is_text(left) and _is_text(right):
        return "VARCHAR"
    raise InvalidArgument(
        f"join key {key!r} is {_kind(left)} in {where} but {_kind(right)}; make them the same type"
    )


# Scans ----------------------------------------------------------------------------------------------
def source_rows(source: Any) -> int | None:
    """Rows in a source when that is cheap to know (an Arrow table, or Parquet footers), else None."""
    import pyarrow.dataset as ds

    if isinstance(source, pa.Table):
        return source.num_rows
    if isinstance(source, ds.InMemoryDataset) or (
        isinstance(source, ds.FileSystemDataset) and isinstance(source.format, ds.ParquetFileFormat)
    ):
        return int(source.count_rows())
    return None


def _time_bound(field: str, kind: pa.DataType, op: str, us: int) -> Any:
    """``field op us`` rounded outwards to whole days, in the column's own type, so Parquet row groups can
    be skipped on their statistics; the exact condition is applied in SQL where it matters."""
    import pyarrow.dataset as ds

    day = us // 86_400_000_000 + (1 if op == "<=" else 0)
    try:
        value = pa.scalar(day * 86_400_000_000, pa.timestamp("us"))  # naive is UTC, also when cast to a zone
        value = value.cast(kind) if pa.types.is_timestamp(kind) else value.cast(pa.date32()).cast(kind)
    except (pa.ArrowInvalid, OverflowError):
        return None
    return ds.field(field) <= value if op == "<=" else ds.field(field) >= value


def scan(source: Any, columns: Sequence[str], time_field: str, low: int | None, high: int | None) -> Any:
    """What DuckDB reads a source from. A dataset becomes a one-pass reader of only ``columns``, skipping row
    groups outside [low, high] microseconds of ``time_field``, with little read-ahead: DuckDB's own dataset
    scan reads ahead so much that Arrow's buffers held 1 GB more (and ran slower) over 14M rows on 2 cores."""
    if isinstance(source, pa.Table):
        return source
    kind = source.schema.field(time_field).type
    bounds = [
        _time_bound(time_field, kind, op, us)
        for op, us in ((">=", low), ("<=", high))
        if us is not None and (pa.types.is_timestamp(kind) or pa.types.is_date(kind))
    ]
    condition = None
    for bound in (b for b in bounds if b is not None):
        condition = bound if condition is None else condition & bound
    scanner = source.scanner(
        columns=list(dict.fromkeys(columns)),
        filter=condition,
        batch_readahead=max(2, (os.cpu_count() or 1) // 2),
        fragment_readahead=1,
    )
    return scanner.to_reader()
