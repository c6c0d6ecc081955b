"""``strato pipelines``: run a pipeline (``apply -f`` stores it; ``get pipelinerun NAME`` shows the DAG)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, print_json
from strato.errors import InvalidArgument

app = typer.Typer(help="Pipelines: run one, follow it.", no_args_is_help=True)


def _parameters(values: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--param {item!r}: write NAME=VALUE, e.g. -p max_leaf_nodes=8")
        try:
            parameters[key] = json.loads(value)  # numbers and booleans keep their type
        except json.JSONDecodeError:
            parameters[key] = value
    return parameters


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (stored with strato apply -f).")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE (repeat).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: pipeline-timestamp).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step; reuse nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    timeout: Annotated[float | None, typer.Option(help="With --wait: give up after this many seconds.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Start a run of a pipeline with parameters; with --wait, show its steps as they go and exit 1 unless
    it Succeeded."""
    with client(home, url, token) as c:
        started = c.pipelines.run(pipeline, _parameters(param or []), name=name, no_cache=no_cache)
        _follow(c, started, wait, timeout, output)


def _follow(c: Any, started: dict[str, Any], wait: bool, timeout: float | None, output: Output) -> None:
    """Say the run started, or follow it with a spinner, show its DAG, and exit 1 unless it Succeeded."""
    from strato.cli.pipelines_output import run_detail

    if not wait:
        print_json(started) if output is Output.json else console.print(f"PipelineRun {started['name']} started")
        return
    with console.status(f"running {started['name']}") as spinner:

        def progress(item: dict[str, Any]) -> None:
            steps = (item["status"].get("steps") or {}).values()
            done = sum(1 for s in steps if s["state"] in ("Succeeded", "Cached", "Skipped", "Failed"))
            spinner.update(f"running {started['name']}: {done}/{len(steps)} steps done")

        final = c.pipelines.wait(started["name"], timeout=timeout, on_progress=progress)
    print_json(final) if output is Output.json else run_detail(final)
    if final["status"]["state"] != "Succeeded":
        raise typer.Exit(1)


@app.command()
def resume(
    run_name: Annotated[str, typer.Argument(metavar="RUN", help="A failed or stopped pipeline run.")],
    name: Annotated[str | None, typer.Option(help="Name of the new run.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    timeout: Annotated[float | None, typer.Option(help="With --wait: give up after this many seconds.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Run again from the failed steps: the steps that succeeded in RUN are reused, the rest run."""
    with client(home, url, token) as c:
        _follow(c, c.pipelines.resume(run_name, name=name), wait, timeout, output)


@app.command()
def pause(
    schedule: Annotated[str, typer.Argument(help="PipelineSchedule name.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Pause a schedule: no new runs until it is unpaused."""
    with client(home, url, token) as c:
        c.pipelines.pause_schedule(schedule, True)
    console.print(f"PipelineSchedule {schedule} paused")


@app.command()
def unpause(
    schedule: Annotated[str, typer.Argument(help="PipelineSchedule name.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Resume a paused schedule from now on (times missed while paused are not run)."""
    with client(home, url, token) as c:
        c.pipelines.pause_schedule(schedule, False)
    console.print(f"PipelineSchedule {schedule} resumed")
