"""``strato features``: apply definitions (YAML or Python), materialize, read online features, push,
see revisions, and measure training-serving skew."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, print_json
from strato.errors import InvalidArgument

app = typer.Typer(
    help="Feature store: apply definitions, materialize, get online features, push, skew.", no_args_is_help=True
)

Views = Annotated[list[str] | None, typer.Option("--view", help="Feature view (repeat; default: every online view).")]


def load_definitions(path: Path) -> list[Any]:
    """The definitions in a YAML file, a Python file (every Entity, FeatureView, ... it defines at top
    level), or a directory of such files."""
    from strato.specs import load_yaml_file
    from strato.specs.features import DEFINITION_KINDS

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".py"))
        return [spec for file in files for spec in load_definitions(file)]
    if not path.is_file():
        raise InvalidArgument(f"{path}: no such file")
    if path.suffix == ".py":
        namespace = runpy.run_path(str(path))
        specs = [v for v in namespace.values() if isinstance(v, DEFINITION_KINDS)]
    else:
        specs = load_yaml_file(path)
    wrong = [s for s in specs if not isinstance(s, DEFINITION_KINDS)]
    if wrong:
        raise InvalidArgument(
            f"{path}: {wrong[0].KIND} {wrong[0].name!r} is not a feature definition; use strato apply"
        )
    if not specs:
        raise InvalidArgument(f"{path}: no feature definitions found")
    return specs


@app.command()
def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML or Python file, or a directory of them.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update entities, feature views, on-demand views and feature services (dependencies first)."""
    specs = load_definitions(file)
    with client(home, url, token) as c, console.status(f"applying {file}"):
        results = c.features.apply(*specs)
    if output is Output.json:
        print_json([r["resource"] for r in results])
        return
    for result in results:
        item = result["resource"]
        what = "created" if result["created"] else "unchanged or updated"
        console.print(f"{item['kind']} {item['name']} {what} (revision {item['status'].get('revision', 1)})")


@app.command("list")
def list_(home: Home = None, url: Url = None, token: Token = None, output: OutputOpt = Output.table) -> None:
    """Every feature definition, with its revision and, for views, how far it is materialized."""
    with client(home, url, token) as c:
        items = [r for kind in ("entities", "featureviews", "ondemandfeatureviews", "featureservices")
                 for r in c.list(kind)]  # fmt: skip
    if output is Output.json:
        print_json(items)
        return
    table = Table("KIND", "NAME", "REVISION", "DETAIL")
    for item in items:
        spec, status = item["spec"], item["status"]
        if item["kind"] == "FeatureView":
            until = (status.get("materialized") or {}).get("until", "-")
            detail = f"{len(spec['features'])} features from {spec['source']}; online until {until}"
        elif item["kind"] == "Entity":
            detail = "join keys " + ", ".join(spec["join_keys"])
        else:
            detail = f"{len(spec['features'])} features"
        table.add_row(item["kind"], item["name"], str(status.get("revision", 1)), detail)
    console.print(table)


def _print_materialized(views: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(views)
        return
    if not views:
        console.print("nothing new to materialize")
    for view in views:
        start = view["start"] or "the beginning"
        console.print(f"{view['view']}: {view['rows']} entities from {start} to {view['end']} ({view['seconds']} s)")


@app.command()
def materialize(
    start: Annotated[str, typer.Argument(help="ISO time, e.g. 2026-01-01T00:00:00Z.")],
    end: Annotated[str, typer.Argument(help="ISO time (exclusive).")],
    views: Views = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Load each entity's latest values with event time in [START, END) into the online store."""
    with client(home, url, token) as c, console.status("materializing"):
        done = c.features.materialize(start, end, views)
    _print_materialized(done, output)


@app.command("materialize-incremental")
def materialize_incremental(
    end: Annotated[str | None, typer.Argument(help="ISO time (default: now).")] = None,
    views: Views = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Materialize from where each view's last materialization ended (resumes after a crash)."""
    with client(home, url, token) as c, console.status("materializing"):
        done = c.features.materialize(None, end, views, incremental=True)
    _print_materialized(done, output)


def _entities(values: list[str]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"--entity {item!r}: write KEY=VALUE, e.g. --entity driver_id=1001")
        columns.setdefault(key, []).append(json.loads(value) if value.lstrip("-").isdigit() else value)
    return columns


@app.command()
def get(
    features: Annotated[list[str] | None, typer.Argument(help="VIEW:FEATURE references.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="A feature service instead of references.")] = None,
    entity: Annotated[
        list[str] | None, typer.Option("--entity", "-e", help="KEY=VALUE (repeat for more rows).")
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Online features for entities: strato features get driver_stats:conv_rate -e driver_id=1001."""
    if bool(features) == bool(service):
        raise InvalidArgument("give VIEW:FEATURE references or --service NAME (one of them)")
    if not entity:
        raise InvalidArgument("give the entities with --entity KEY=VALUE")
    with client(home, url, token) as c:
        result = c.features.get_online_features(_entities(entity), service or list(features or []))
    if output is Output.json:
        print_json(result)
        return
    table = Table(*result)
    for row in zip(*result.values(), strict=True):
        table.add_row(*("-" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def push(
    view: Annotated[str, typer.Argument(help="Feature view.")],
    data: Annotated[Path, typer.Option("--data", help="JSON file: a list of rows.")],
    to: Annotated[str, typer.Option(help="online, offline or both.")] = "online",
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Push rows to the online store and/or the view's lake table (older event times never win online)."""
    if not data.is_file():
        raise InvalidArgument(f"--data {data}: no such file")
    try:
        rows = json.loads(data.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--data {data}: not JSON ({exc.msg} at line {exc.lineno})") from None
    with client(home, url, token) as c:
        result = c.features.push(view, rows, to=to)  # type: ignore[arg-type]
    if output is Output.json:
        print_json(result)
        return
    console.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@app.command()
def revisions(
    kind: Annotated[str, typer.Argument(help="featureview, entity, featureservice, ondemandfeatureview.")],
    name: Annotated[str, typer.Argument(help="Definition name.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Every revision of a definition, oldest first."""
    with client(home, url, token) as c:
        items = c.features.revisions(kind, name)
    if output is Output.json:
        print_json(items)
        return
    table = Table("REVISION", "AT", "CHANGE")
    from datetime import UTC, datetime

    for item in items:
        table.add_row(str(item["revision"]), datetime.fromtimestamp(item["at"], UTC).isoformat(), item["message"])
    console.print(table)


@app.command()
def skew(
    name: Annotated[str, typer.Argument(help="Feature service or view.")],
    endpoint: Annotated[str | None, typer.Option(help="Only requests of this endpoint.")] = None,
    since: Annotated[str | None, typer.Option(help="Only requests after this ISO time.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Measure training-serving skew: served feature values vs the point-in-time offline values."""
    with client(home, url, token) as c, console.status("joining served features to offline values"):
        report = c.features.skew(name, endpoint=endpoint, since=since)
    if output is Output.json:
        print_json(report)
        return
    console.print(f"{report['rows']} served rows of {name}" + (f" on {endpoint}" if endpoint else ""))
    table = Table("FEATURE", "MISMATCH", "DISTANCE", "SERVED NULL", "OFFLINE NULL", "SERVED MEAN", "OFFLINE MEAN")

    def num(value: Any, percent: bool = False) -> str:
        if value is None or value != value:
            return "-"
        return f"{value:.1%}" if percent else f"{value:.4g}"

    for feature, row in report["features"].items():
        table.add_row(
            feature,
            num(row["mismatch_rate"], True),
            f"{num(row['distance'])} ({row['distance_kind']})",
            num(row["served_null_rate"], True),
            num(row["offline_null_rate"], True),
            num(row.get("served_mean")),
            num(row.get("offline_mean")),
        )
    console.print(table)
