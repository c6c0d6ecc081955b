"""Options every command shares, and how a command reaches the control plane."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from strato.client import Client, connect

Home = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace home (default ~/.strato).", envvar="STRATO_HOME", show_default=False),
]
Url = Annotated[
    str | None,
    typer.Option("--url", help="Control plane URL (default: the home's).", envvar="STRATO_URL", show_default=False),
]
Token = Annotated[
    str | None,
    typer.Option("--token", help="API token (default: the home's).", envvar="STRATO_TOKEN", show_default=False),
]


class Output(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"  # Graphviz, for graphs: pipeline runs and lineage


OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]


def client(home: Path | None, url: str | None, token: str | None) -> Client:
    """Connect to ``--url``, or to the home's control plane, starting it when none runs."""
    return connect(url, home=home, token=token)


def show_final(data: dict[str, Any], detail: Callable[[dict[str, Any]], None], output: Output) -> None:
    """Print a resource that has ended (JSON or its detail view); exit 1 unless it Completed."""
    from strato.cli.output import print_json

    if output is Output.json:
        print_json(data)
    else:
        detail(data)
    if data["status"]["state"] != "Completed":
        raise typer.Exit(1)
