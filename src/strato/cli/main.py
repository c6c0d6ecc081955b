"""Entry point of the ``strato`` command. User errors end in one line on stderr and exit code 1."""

from __future__ import annotations

import sys

import typer

from strato.cli import jobs, server, verbs
from strato.cli.output import errors
from strato.errors import StratoError

app = typer.Typer(
    name="strato", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Strato: training jobs and the ML platform around them, on this machine or a Ray cluster.",
)
for command in (server.up, server.down, server.status, server.server):
    app.command()(command)
for command in (verbs.apply, verbs.get, verbs.delete, verbs.logs, verbs.wait, verbs.stop):
    app.command()(command)
app.add_typer(jobs.app, name="jobs")


@app.command()
def version() -> None:
    """Print Strato's version."""
    import strato

    print(strato.__version__)


def main() -> None:
    try:
        app(standalone_mode=True)
    except StratoError as exc:
        errors.print(f"error: {exc.message}", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
