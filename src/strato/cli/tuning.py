"""``strato tuning``: watch a tuning job trial by trial, stop it, resume it. (``apply -f``, ``get tuning``,
``get trials tuning NAME``, ``wait tuning`` and ``delete tuning`` are the generic verbs.)"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client, show_final
from strato.cli.output import console
from strato.cli.tuning_output import progress, trials_table, tuning_detail
from strato.client import Tuning

app = typer.Typer(help="Tuning jobs: watch, stop, resume.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Tuning job name.")]
Timeout = Annotated[float | None, typer.Option(help="Give up after this many seconds.")]


def _finish(tuning: Tuning, output: Output) -> None:
    show_final(tuning.data, tuning_detail, output)


def wait_tuning(name: str, timeout: float | None, home: Home, url: Url, token: Token, output: Output) -> None:
    """``strato wait tuning NAME``: a spinner with the trial counts, then the result."""
    with client(home, url, token) as c, console.status(f"waiting for {name}") as spinner:

        def show(tuning: Tuning) -> None:
            spinner.update(f"{name}: {tuning.status}, {progress(tuning.data['status'])}")

        tuning = c.tuning.wait(name, timeout=timeout, on_progress=show)
    _finish(tuning, output)


@app.command()
def watch(
    name: Name,
    timeout: Timeout = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Follow a tuning job trial by trial (step, last value, state) until it ends; exit 0 when Completed."""
    with client(home, url, token) as c:

        def view(tuning: Tuning) -> Group:
            status = tuning.data["status"]
            head = Text.from_markup(f"[bold]{name}[/] {tuning.status}: {progress(status)}")
            return Group(head, Text(str(status.get("message", ""))), trials_table(tuning.trials()))

        tuning = c.tuning.get(name)
        with Live(view(tuning), console=console, refresh_per_second=4, transient=False) as live:
            tuning = c.tuning.wait(name, timeout=timeout, poll=interval, on_progress=lambda t: live.update(view(t)))
    _finish(tuning, output)


@app.command()
def stop(name: Name, home: Home = None, url: Url = None, token: Token = None) -> None:
    """Stop a tuning job: its running trials are stopped; ``strato tuning resume`` continues it."""
    with client(home, url, token) as c:
        tuning = c.tuning.stop(name)
    console.print(f"TuningJob {name}: {tuning.status}")


@app.command()
def resume(name: Name, home: Home = None, url: Url = None, token: Token = None) -> None:
    """Resume a stopped tuning job with the same study: trials already run count, none runs twice."""
    with client(home, url, token) as c:
        tuning = c.tuning.resume(name)
    console.print(f"TuningJob {name}: resuming ({progress(tuning.data['status'])})")
