"""``strato batch``: follow a batch transform job with a progress bar, or stop it. (``apply -f``,
``get batch`` and ``delete batch`` are the generic verbs.)"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, print_json

app = typer.Typer(help="Batch transform jobs: watch with a progress bar, stop.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Batch transform job name.")]


def _summary(job: dict[str, Any], output: Output) -> None:
    status = job["status"]
    if output is Output.json:
        print_json(job)
    else:
        console.print(f"{job['name']}: {status['state']}: {status.get('message', '')}")
        if status.get("rows_per_second"):
            billed = status["usage"]["billed_seconds"]
            console.print(f"  {status['rows_per_second']:.0f} rows/s; billed {billed:.1f} worker-seconds")
    if status["state"] != "Completed":
        raise typer.Exit(1)


@app.command()
def watch(
    name: Name,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Follow a batch transform job (rows scored of the total) until it ends; exit 0 when Completed."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with client(home, url, token) as c, Progress(*columns, console=console, transient=output is Output.json) as bar:
        task = bar.add_task(name, total=None)

        def show(job: dict[str, Any]) -> None:
            progress = job["status"].get("progress") or {}
            bar.update(task, completed=progress.get("rows_done", 0), total=progress.get("rows_total") or None,
                       description=f"{name} {job['status']['state']}")  # fmt: skip

        job = c.batch.wait(name, timeout=timeout, on_progress=show)
    _summary(job, output)


@app.command()
def stop(name: Name, home: Home = None, url: Url = None, token: Token = None) -> None:
    """Stop a batch transform job's workers; the parts they finished stay in its output."""
    with client(home, url, token) as c:
        job = c.batch.stop(name)
    console.print(f"{name}: {job['status']['state']}")
