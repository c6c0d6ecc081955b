"""``strato lake``: Delta Lake tables under the workspace's lake root, read and written directly (a data
path, as Delta's and Feast's clients do: no control plane needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from strato.cli.common import Home, Output, OutputOpt
from strato.cli.output import console, print_json
from strato.config import load_settings

if TYPE_CHECKING:
    from strato.lake.tables import LakeTables

app = typer.Typer(help="Lake tables (Delta Lake): create, append, overwrite, upsert, read, history, schema.",
                  no_args_is_help=True)  # fmt: skip

Name = Annotated[str, typer.Argument(help="Table name (lake://NAME).")]
Source = Annotated[Path, typer.Option("--from", help="A Parquet or CSV file.")]
Evolve = Annotated[bool, typer.Option("--evolve", help="Add the data's new columns to the table's schema.")]


def _tables(home: Path | None) -> LakeTables:
    from strato.lake.tables import LakeTables  # deltalake is heavy: only when a lake command runs

    settings = load_settings(home=home)
    return LakeTables(settings.resolved_lake_url)


@app.command()
def create(
    name: Name,
    source: Source,
    partition_by: Annotated[list[str] | None, typer.Option("--partition-by", help="Partition column.")] = None,
    home: Home = None,
) -> None:
    """Create a table from a Parquet or CSV file (version 0)."""
    _tables(home).create(name, source, partition_by=partition_by)
    console.print(f"lake://{name} created (version 0)")


@app.command()
def append(name: Name, source: Source, evolve: Evolve = False, home: Home = None) -> None:
    """Append a file's rows; a file whose columns differ is refused unless --evolve."""
    console.print(f"lake://{name} version {_tables(home).append(name, source, evolve=evolve)}")


@app.command()
def overwrite(name: Name, source: Source, evolve: Evolve = False, home: Home = None) -> None:
    """Replace the table's rows with a file's (earlier versions stay readable)."""
    console.print(f"lake://{name} version {_tables(home).overwrite(name, source, evolve=evolve)}")


@app.command()
def upsert(
    name: Name,
    source: Source,
    keys: Annotated[list[str], typer.Option("--key", help="Key column (repeat for several).")],
    home: Home = None,
) -> None:
    """Merge a file's rows on the key columns: matches updated, the rest inserted."""
    console.print(f"lake://{name} version {_tables(home).upsert(name, source, keys)}")


@app.command()
def read(
    name: Name,
    version: Annotated[int | None, typer.Option(help="Read this version (time travel).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Read as of an ISO time, e.g. 2026-12-01T10:00Z.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    home: Home = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show a table's rows (now, at a version, or as of a time)."""
    table = _tables(home).read(name, version=version, timestamp=as_of)
    rows = table.slice(0, limit).to_pylist()
    if output is Output.json:
        print_json(rows)
        return
    view = Table(*table.column_names)
    for row in rows:
        view.add_row(*(str(value) for value in row.values()))
    console.print(view)
    console.print(f"{min(limit, table.num_rows)} of {table.num_rows} rows")


@app.command()
def history(name: Name, home: Home = None, output: OutputOpt = Output.table) -> None:
    """Versions, newest first: when, and what operation made each."""
    entries = _tables(home).history(name)
    if output is Output.json:
        print_json(entries)
        return
    view = Table("version", "timestamp (ms)", "operation")
    for entry in entries:
        view.add_row(str(entry["version"]), str(entry["timestamp"]), str(entry["operation"]))
    console.print(view)


@app.command()
def schema(name: Name, home: Home = None, output: OutputOpt = Output.table) -> None:
    """The table's columns and types."""
    columns = _tables(home).schema(name)
    if output is Output.json:
        print_json(columns)
        return
    view = Table("column", "type")
    for column in columns:
        view.add_row(column["name"], column["type"])
    console.print(view)
