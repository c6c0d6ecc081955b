"""``strato cost``: quotes across clouds, the price catalog, the ledger and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, print_json
from strato.errors import InvalidArgument
from strato.units import parse_duration, parse_memory

app = typer.Typer(help="Cost engine: quotes, the price catalog, the ledger and the report.", no_args_is_help=True)
catalog_app = typer.Typer(help="The price catalog: search it, refresh it from the public price APIs.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(catalog_app, name="catalog")

Many = Annotated[list[str] | None, typer.Option(help="Repeat for several.")]


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _warn(data: dict[str, Any]) -> None:
    if data.get("catalog_warning"):
        console.print(f"[yellow]warning:[/] {data['catalog_warning']}")


@app.command("quote")
def quote(
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="Quote a job, tuning job, endpoint or batch spec.")
    ] = None,
    cpus: Annotated[float | None, typer.Option(help="vCPUs per node.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory per node, e.g. 16Gi.")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per node.")] = None,
    gpu_type: Annotated[str | None, typer.Option("--gpu-type", help="T4, L4, A10G, A100, A100-80GB, H100 ...")] = None,
    nodes: Annotated[int | None, typer.Option(help="Instances.")] = None,
    hours: Annotated[str | None, typer.Option(help="Work to do, e.g. 6h (uninterrupted).")] = None,
    deadline: Annotated[str | None, typer.Option(help="Finish within, e.g. 72h.")] = None,
    probability: Annotated[float, typer.Option(help="How sure the deadline must be.")] = 0.9,
    cloud: Many = None,
    region: Many = None,
    purchase: Annotated[list[str] | None, typer.Option(help="on_demand, spot, commit_1y, commit_3y.")] = None,
    max_hourly: Annotated[float | None, typer.Option("--max-hourly", help="USD per node-hour at most.")] = None,
    checkpoint_every: Annotated[str | None, typer.Option("--checkpoint-every", help="e.g. 30m (spot).")] = None,
    limit: Annotated[int, typer.Option(help="Options shown.")] = 10,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Every feasible option across clouds, regions, raw VM vs managed and purchase options, ranked by
    expected cost (spot includes interruptions), e.g. strato cost quote --gpus 1 --gpu-type A10G --hours 4h."""
    from strato.specs import load_yaml_file

    request: dict[str, Any] = {}
    for key, value in (("cpus", cpus), ("gpus", gpus), ("gpu_type", gpu_type), ("nodes", nodes),
                       ("max_hourly", max_hourly)):  # fmt: skip
        if value is not None:
            request[key] = value
    if memory is not None:
        request["memory_gib"] = parse_memory(memory) / 1024**3
    if hours is not None:
        request["hours"] = _hours(hours, "--hours")
    if deadline is not None:
        request["deadline_hours"] = parse_duration(deadline) / 3600
        request["deadline_probability"] = probability
    if checkpoint_every is not None:
        request["checkpoint_interval_hours"] = parse_duration(checkpoint_every) / 3600
    for key, values in (("clouds", cloud), ("regions", region), ("purchase", purchase)):
        if values:
            request[key] = values
    spec = None
    if file is not None:
        specs = load_yaml_file(file)
        if len(specs) != 1:
            raise InvalidArgument(f"{file}: give one resource to quote (it has {len(specs)})")
        spec = specs[0]
    with client(home, url, token) as c:
        answer = c.cost.quote(spec, limit=limit, **request)
    if output is Output.json:
        print_json(answer)
        return
    _warn(answer)
    if "steps" in answer:  # a pipeline: the cheapest plan per step
        steps = Table("STEP", "CLOUD", "REGION", "INSTANCE", "PURCHASE", "EXPECTED H", "EXPECTED COST")
        for item in answer["steps"]:
            option, offer = item["option"], item["option"]["offer"]
            steps.add_row(item["step"], offer["cloud"], offer["region"], offer["instance_type"], option["purchase"],
                          f"{option['expected_hours']:.2f}", _money(option["expected_cost"]))  # fmt: skip
        console.print(steps)
        console.print(f"pipeline {answer['pipeline']}: {_money(answer['total_expected_cost'])} expected")
        return
    table = Table("#", "CLOUD", "REGION", "SERVICE", "INSTANCE", "PURCHASE", "$/HOUR", "EXPECTED H", "EXPECTED COST",
                  "P(DEADLINE)", "NOTES")  # fmt: skip
    for n, option in enumerate(answer["options"], start=1):
        offer = option["offer"]
        p = option.get("p_deadline")
        table.add_row(
            str(n), offer["cloud"], offer["region"], offer["service"], offer["instance_type"], option["purchase"],
            _money(option["hourly"]), f"{option['expected_hours']:.2f}", _money(option["expected_cost"]),
            "-" if p is None else f"{p:.0%}", "; ".join(option.get("notes") or []),
        )  # fmt: skip
    console.print(table)


def _hours(text: str, flag: str) -> float:
    try:
        seconds = parse_duration(text)
    except (ValueError, InvalidArgument):
        raise InvalidArgument(f"{flag} {text!r}: write a duration such as 90m, 6h or 2d") from None
    if seconds <= 0:
        raise InvalidArgument(f"{flag} must be more than zero (got {text})")
    return seconds / 3600


@app.command()
def report(
    since: Annotated[str, typer.Option(help="Window, e.g. 30d or 12h.")] = "30d",
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Spend by kind and purchase option, what each of the five levers would save per month, and the top
    recommendations (right-sizing, commitments, idle endpoints)."""
    days = _hours(since, "--since") / 24
    with client(home, url, token) as c:
        data = c.cost.report(days)
    if output is Output.json:
        print_json(data)
        return
    _warn(data)
    console.print(f"[bold]Spend[/] over {since} at {data['target']}: {_money(data['total'])} "
                  f"(~{_money(data['monthly'])} a month)")  # fmt: skip
    clouds = {k: v for k, v in (data.get("on_each_cloud") or {}).items() if v is not None}
    if clouds:
        _bars("the same run time on demand on each cloud (cheapest fitting instance)", clouds)
    _bars("by kind", data["by_kind"])
    _bars("by purchase option", data["by_purchase"])
    levers = Table("LEVER", "SAVES / MONTH", "HOW")
    for lever in data["levers"]:
        levers.add_row(lever["lever"], _money(lever["monthly_saving"]), lever["note"])
    console.print(levers)
    if data["recommendations"]:
        recs = Table("SAVES / MONTH", "WHAT", "RECOMMENDATION")
        for rec in data["recommendations"]:
            recs.add_row(_money(rec["monthly_saving"]), f"{rec['kind']} {rec['name']}", rec["message"])
        console.print(recs)


def _bars(title: str, values: dict[str, float]) -> None:
    """A bar chart in the terminal: one row per key, the bar's length proportional to its share."""
    if not values:
        return
    console.print(f"[bold]{title}[/]")
    top = max(values.values()) or 1.0
    width = max(len(k) for k in values)
    for key, value in sorted(values.items(), key=lambda item: -item[1]):
        bar = "█" * max(1, round(30 * value / top)) if value > 0 else ""
        console.print(f"  {key:<{width}}  [cyan]{bar}[/] {_money(value)}")


@catalog_app.command("search")
def search(
    gpu: Annotated[str | None, typer.Option(help="GPU type, e.g. A100.")] = None,
    cloud: Annotated[str | None, typer.Option(help="aws, gcp or azure.")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    service: Annotated[str | None, typer.Option(help="vm, sagemaker, vertex, azureml.")] = None,
    min_vcpus: Annotated[float | None, typer.Option("--min-vcpus")] = None,
    min_memory: Annotated[str | None, typer.Option("--min-memory", help="e.g. 64Gi")] = None,
    limit: Annotated[int, typer.Option()] = 30,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Instances with their prices, cheapest first: strato cost catalog search --gpu A100 --cloud gcp."""
    memory = parse_memory(min_memory) / 1024**3 if min_memory else None
    with client(home, url, token) as c:
        data = c.cost.catalog(gpu=gpu, cloud=cloud, region=region, service=service, min_vcpus=min_vcpus,
                              min_memory_gib=memory, limit=limit)  # fmt: skip
    if output is Output.json:
        print_json(data)
        return
    _warn(data)
    table = Table("CLOUD", "REGION", "SERVICE", "INSTANCE", "VCPU", "MEM GIB", "GPU", "ON DEMAND", "SPOT",
                  "INTERRUPTIONS", "AS OF")  # fmt: skip
    for o in data["offers"]:
        gpu_text = f"{o['gpu_count']} x {o['gpu_model']}" if o["gpu_count"] else "-"
        table.add_row(o["cloud"], o["region"], o["service"], o["instance_type"], f"{o['vcpus']:g}",
                      f"{o['memory_gib']:g}", gpu_text, _money(o["on_demand"]), _money(o["spot"]),
                      o.get("interruption_bucket") or "-", o["as_of"])  # fmt: skip
    console.print(table)
    console.print(f"{len(data['offers'])} of {data['count']} offers")


@catalog_app.command("update")
def update(
    provider: Annotated[list[str] | None, typer.Option(help="aws, azure, gcp, spot_advisor (default all).")] = None,
    gcp_key: Annotated[
        str | None, typer.Option("--gcp-key", envvar="STRATO_GCP_API_KEY", help="Cloud Billing API key.")
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Fetch current prices from the public price APIs into the workspace's catalog (atomically: a failed or
    partial refresh leaves the catalog in use as it was)."""
    options: dict[str, Any] = {}
    if provider:
        options["providers"] = provider
    if gcp_key:
        options["gcp_key"] = gcp_key
    with client(home, url, token) as c, console.status("fetching prices"):
        data = c.cost.update_catalog(**options)
    if output is Output.json:
        print_json(data)
    else:
        for line in data.get("summary") or []:
            console.print(line, markup=False, highlight=False)
    if not data.get("ok"):
        raise typer.Exit(1)
