"""Entry point of the ``strato`` command. User errors end in one line on stderr and exit code 1."""

from __future__ import annotations

import sys

import typer

from strato.cli import batch, cost, endpoints, features, jobs, lake, lineage, models, pipelines, server, tuning, verbs
from strato.cli.output import errors
from strato.errors import StratoError

app = typer.Typer(
    name="strato",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Strato: training jobs and the ML platform around them, on this machine or a Ray cluster.",
)
app.command()(server.up)
app.command()(server.down)
app.command()(server.status)
app.command()(server.server)
app.command()(verbs.apply)
app.command()(verbs.get)
app.command()(verbs.delete)
app.command()(verbs.logs)
app.command()(verbs.wait)
app.command()(verbs.stop)
app.command(epilog=lineage.EPILOG)(lineage.lineage)
app.add_typer(jobs.app, name="jobs")
app.add_typer(tuning.app, name="tuning")
app.add_typer(models.app, name="models")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(batch.app, name="batch")
app.add_typer(lake.app, name="lake")
app.add_typer(features.app, name="features")
app.add_typer(cost.app, name="cost")
app.add_typer(pipelines.app, name="pipelines")


@app.command()
def version() -> None:
    """Print Strato's version."""
    import strato

    print(strato.__version__)


def main() -> None:
    try:
        app(standalone_mode=True)
    except StratoError as exc:
        # One line: soft_wrap stops Rich wrapping at the terminal width (80 columns when stderr is a pipe).
        message = " ".join(exc.message.splitlines())
        errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
