"""Lake tables: Delta Lake tables under the workspace's lake root (Databricks' lakehouse on one machine),
through ``deltalake`` (delta-rs). Create from pandas, Arrow, Polars or a Parquet/CSV file; append,
overwrite, upsert on keys; read at a version or a timestamp (time travel); history and schema.

Writes are schema-enforced: data whose columns or types differ from the table's is refused with a
message that lists the differences, unless the caller asks for schema evolution (``evolve=True``:
new columns are added, as Delta's ``mergeSchema``). Tables are named ``lake://NAME`` or
``lake://NAME@VERSION`` wherever a job or a batch transform takes input (``resolve``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from strato.errors import AlreadyExists, InvalidArgument, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
URI_RE = re.compile(r"^lake://(?P<name>[^@/]+)(@(?P<version>\d+))?$")


@dataclass(frozen=True)
class LakeRef:
    name: str
    version: int | None


def parse_uri(uri: str) -> LakeRef:
    """``lake://name`` or ``lake://name@3``."""
    match = URI_RE.match(uri)
    if match is None:
        raise InvalidArgument(f"{uri!r} is not a lake table address; write lake://NAME or lake://NAME@VERSION")
    version = match.group("version")
    return LakeRef(match.group("name"), int(version) if version is not None else None)


def as_arrow(data: Any) -> pa.Table:
    """pandas, Arrow, Polars (anything with ``__arrow_c_stream__``) or a Parquet/CSV file as an Arrow table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise InvalidArgument(f"{path} does not exist")
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if hasattr(data, "to_arrow"):  # Polars
        return pa.table(data.to_arrow())
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        import warnings

        with warnings.catch_warnings():  # pyarrow reads tz-aware columns through an API pandas 3 deprecates
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidArgument(f"cannot make a table of a {type(data).__name__}: give pandas, Arrow, Polars or a file path")


def schema_differences(table: pa.Schema, data: pa.Schema) -> list[str]:
    """Why ``data`` does not fit ``table``, one line each (empty when it fits)."""
    have = {f.name: f.type for f in table}
    given = {f.name: f.type for f in data}
    lines = [f"missing column {name!r} ({_kind(have[name])})" for name in have if name not in given]
    lines += [f"new column {name!r} ({_kind(given[name])})" for name in given if name not in have]
    lines += [
        f"column {name!r} is {_kind(given[name])}, the table has {_kind(have[name])}"
        for name in given
        if name in have and not _compatible(have[name], given[name])
    ]
    return lines


def _kind(arrow_type: pa.DataType) -> str:
    """A type as users think of it (pandas' strings arrive as Arrow's large_string)."""
    return "string" if pa.types.is_large_string(arrow_type) else str(arrow_type)


def _compatible(table: pa.DataType, data: pa.DataType) -> bool:
    if table == data:
        return True
    widening = (pa.types.is_integer(table) and pa.types.is_integer(data)) or (
        pa.types.is_floating(table) and (pa.types.is_floating(data) or pa.types.is_integer(data))
    )
    strings = pa.types.is_string(table) or pa.types.is_large_string(table)
    return widening or (strings and (pa.types.is_string(data) or pa.types.is_large_string(data)))


class LakeTables:
    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        self.root = str(root).rstrip("/")
        self.storage_options = storage_options

    def uri(self, name: str) -> str:
        if not NAME_RE.match(name):
            raise InvalidArgument(f"lake table name {name!r} is not valid: letters, digits, '.', '_' or '-'")
        return f"{self.root}/{name}"

    def _table(self, name: str, version: int | None = None) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(self.uri(name), storage_options=self.storage_options)
        except TableNotFoundError:
            raise NotFound(f"no lake table {name!r} (under {self.root})") from None
        if version is not None:
            latest = table.version()
            if not 0 <= version <= latest:
                raise NotFound(f"lake table {name!r} has no version {version} (versions 0 to {latest})")
            table.load_as_version(version)
        return table

    def exists(self, name: str) -> bool:
        try:
            self._table(name)
        except NotFound:
            return False
        return True

    # Write ------------------------------------------------------------------------------------------
    def create(self, name: str, data: Any, *, partition_by: list[str] | None = None) -> int:
        if self.exists(name):
            raise AlreadyExists(f"lake table {name!r} already exists; append to it, overwrite it or delete it")
        from deltalake import write_deltalake

        write_deltalake(self.uri(name), as_arrow(data), partition_by=partition_by, storage_options=self.storage_options)
        return 0

    def append(self, name: str, data: Any, *, evolve: bool = False) -> int:
        return self._write(name, data, "append", evolve)

    def overwrite(self, name: str, data: Any, *, evolve: bool = False) -> int:
        return self._write(name, data, "overwrite", evolve)

    def _write(self, name: str, data: Any, mode: Literal["append", "overwrite"], evolve: bool) -> int:
        from deltalake import write_deltalake

        table = self._table(name)
        arrow = as_arrow(data)
        differences = schema_differences(pa.schema(table.schema().to_arrow()), arrow.schema)
        if differences and not evolve:
            raise InvalidArgument(
                f"the data does not match lake table {name!r}: {'; '.join(differences)} "
                "(fix the data, or pass evolve=True / --evolve to add new columns)"
            )
        schema_mode: Literal["merge"] | None = "merge" if evolve else None
        if mode == "overwrite":
            write_deltalake(
                table, arrow, mode="overwrite", schema_mode=schema_mode, storage_options=self.storage_options
            )
        else:
            write_deltalake(table, arrow, mode="append", schema_mode=schema_mode, storage_options=self.storage_options)
        return int(self._table(name).version())

    def upsert(self, name: str, data: Any, keys: list[str]) -> int:
        """Merge on ``keys``: matching rows are updated, the others inserted."""
        table = self._table(name)
        arrow = as_arrow(data)
        missing = [k for k in keys if k not in arrow.column_names]
        if not keys or missing:
            raise InvalidArgument(
                f"upsert needs key columns present in the data (missing: {', '.join(missing) or '-'})"
            )
        differences = schema_differences(pa.schema(table.schema().to_arrow()), arrow.schema)
        if differences:
            raise InvalidArgument(f"the data does not match lake table {name!r}: {'; '.join(differences)}")
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (
            table.merge(arrow, predicate=predicate, source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return int(self._table(name).version())

    # Read -------------------------------------------------------------------------------------------
    def read(
        self, name: str, *, version: int | None = None, timestamp: datetime | str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:  # fmt: skip
        """The table now, at ``version``, or as it was at ``timestamp`` (time travel)."""
        table = self._table(name, version)
        if timestamp is not None:
            try:
                table.load_as_version(timestamp)
            except Exception as exc:
                raise NotFound(f"lake table {name!r} has no version at {timestamp}: {exc}") from None
        return table.to_pyarrow_table(columns=columns, filesystem=self._filesystem(name))

    def _filesystem(self, name: str) -> Any:
        """Arrow's own file system for a local table. deltalake's default (its storage handler, called from
        Arrow's I/O threads) can abort the interpreter at exit ("terminate called without an active
        exception") when those threads outlive it; Arrow's file system has no such race."""
        uri = self.uri(name)
        if "://" in uri.removeprefix("file://"):
            return None
        import pyarrow.fs as pafs

        return pafs.SubTreeFileSystem(uri.removeprefix("file://"), pafs.LocalFileSystem())

    def version(self, name: str) -> int:
        return int(self._table(name).version())

    def history(self, name: str) -> list[dict[str, Any]]:
        """Newest first: version, timestamp (ms), operation and its parameters."""
        return [
            {k: entry.get(k) for k in ("version", "timestamp", "operation", "operationParameters")}
            for entry in self._table(name).history()
        ]

    def schema(self, name: str) -> list[dict[str, str]]:
        return [{"name": f.name, "type": _kind(f.type)} for f in self.arrow_schema(name)]

    def arrow_schema(self, name: str, version: int | None = None) -> pa.Schema:
        return pa.schema(self._table(name, version).schema().to_arrow())

    def resolve(self, uri: str) -> tuple[str, int]:
        """``lake://name[@version]`` -> (the table's location, the version it names: the latest if none)."""
        ref = parse_uri(uri)
        table = self._table(ref.name, ref.version)
        return self.uri(ref.name), int(table.version())
