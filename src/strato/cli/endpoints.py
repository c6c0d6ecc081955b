"""``strato endpoints``: invoke an endpoint and see where its replicas stand. (``apply -f``, ``get
endpoints`` and ``delete endpoint`` are the generic verbs.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, print_json
from strato.errors import InvalidArgument

app = typer.Typer(help="Endpoints: invoke, describe, wait.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Endpoint name.")]


def _data(value: str) -> bytes:
    """``@file`` reads a file, ``-`` reads stdin, anything else is the body itself."""
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InvalidArgument(f"--data {value}: no such file {path}")
        return path.read_bytes()
    return value.encode()


@app.command()
def invoke(
    name: Name,
    data: Annotated[str, typer.Option("--data", "-d", help="Request body: JSON text, @FILE, or - for stdin.")],
    content_type: Annotated[str, typer.Option(help="application/json or text/csv.")] = "application/json",
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Send one request to an endpoint (through the router, as any client would) and print the answer."""
    with client(home, url, token) as c:
        print_json(c.endpoints.invoke(name, _data(data), content_type=content_type))


@app.command()
def wait(
    name: Name,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300.0,
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Wait until an endpoint is in service; exit 1 with its reason when it fails."""
    with client(home, url, token) as c, console.status(f"waiting for endpoint {name}"):
        endpoint = c.endpoints.wait(name, timeout=timeout)
    console.print(f"{name}: InService at {endpoint['status']['url']}")


@app.command()
def describe(
    name: Name, home: Home = None, url: Url = None, token: Token = None, output: OutputOpt = Output.table
) -> None:
    """Variants, their models and replicas, and the autoscaler's latest decisions."""
    with client(home, url, token) as c:
        endpoint = c.endpoints.get(name)
    if output is Output.json:
        print_json(endpoint)
        return
    status = endpoint["status"]
    console.print(f"[bold]{name}[/] {status['state']}: {status.get('message', '')}")
    if status.get("url"):
        console.print(f"url: {status['url']}")
    table = Table("variant", "model", "version", "desired", "ready", "starting", "message")
    for variant, v in status.get("variants", {}).items():
        ready = sum(1 for r in v["replicas"] if r["state"] == "Ready")
        table.add_row(variant, v["model"], v.get("version") or "", str(v["desired"]), str(ready),
                      str(len(v["replicas"]) - ready), v.get("message", ""))  # fmt: skip
    console.print(table)
    for decision in status.get("decisions", [])[-5:]:
        console.print(f"  scaled {decision['variant']} to {decision['desired']}: {decision['reason']}")
