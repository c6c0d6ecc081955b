"""``strato up | down | status | server``: the control plane's life cycle."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from strato.cli.common import Home, Output, OutputOpt
from strato.cli.output import console, print_json
from strato.client import connect
from strato.config import load_settings
from strato.server import daemon

Host = Annotated[
    str | None, typer.Option("--host", help="Interface to listen on (default 127.0.0.1).", show_default=False)
]
Port = Annotated[
    int | None, typer.Option("--port", help="Port to listen on (default 8700; 0 picks a free one).", show_default=False)
]


def up(home: Home = None, host: Host = None, port: Port = None, output: OutputOpt = Output.table) -> None:
    """Start the control plane as a daemon (pid and log files in the home)."""
    settings = load_settings(home=home, host=host, port=port)
    info = daemon.start(settings)
    if output is Output.json:
        print_json(info.__dict__)
    else:
        console.print(f"Strato control plane running at {info.url} (pid {info.pid}, home {info.home})")


def down(home: Home = None) -> None:
    """Stop the control plane of the home. Running jobs keep running and are re-adopted by the next one."""
    settings = load_settings(home=home)
    info = daemon.stop(settings)
    console.print(
        f"stopped the control plane (pid {info.pid})" if info else f"no control plane runs for home {settings.home}"
    )


def status(home: Home = None, output: OutputOpt = Output.table) -> None:
    """Show whether the home's control plane runs, where, and what it holds."""
    settings = load_settings(home=home)
    info = daemon.read_info(settings)
    data = {"running": info is not None, "home": str(settings.home), **(info.__dict__ if info else {})}
    if info is not None:
        data["healthy"] = daemon.healthy(info.url)
        if data["healthy"]:
            with connect(info.url, home=home) as client:
                data["jobs"] = dict(Counter(job.status for job in client.jobs.list()))
    if output is Output.json:
        print_json(data)
    elif info is None:
        console.print(f"no control plane runs for home {settings.home} (start it with `strato up`)")
    else:
        console.print(
            f"running at {info.url} (pid {info.pid}, home {info.home}, "
            f"{'healthy' if data['healthy'] else 'not answering'})"
        )
        jobs = data.get("jobs") or {}
        console.print("jobs: " + (", ".join(f"{n} {state}" for state, n in sorted(jobs.items())) or "none"))
    if info is None:
        raise typer.Exit(3)


def server(
    home: Home = None,
    host: Host = None,
    port: Port = None,
    database_url: Annotated[str | None, typer.Option(help="Metadata database URL.")] = None,
    artifact_url: Annotated[str | None, typer.Option(help="Artifact store URL.")] = None,
) -> None:
    """Run the control plane in the foreground (Ctrl-C stops it)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon.serve(
        load_settings(
            home=Path(home) if home else None,
            host=host,
            port=port,
            database_url=database_url,
            artifact_url=artifact_url,
        )
    )
