"""The generic verbs over any resource kind: apply, get, delete, logs, wait, stop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from strato.cli import tuning
from strato.cli.common import Home, Output, OutputOpt, Token, Url, client, show_final
from strato.cli.output import console, job_detail, print_json
from strato.cli.views import KIND_VIEWS, SUB_VIEWS
from strato.errors import ErrorCode, InvalidArgument, StratoError
from strato.specs import KINDS, load_yaml_file

SPEC_ERRORS = {ErrorCode.INVALID_ARGUMENT, ErrorCode.RESOURCES_IMPOSSIBLE, ErrorCode.ALREADY_EXISTS}

Kind = Annotated[str, typer.Argument(help="Resource kind, e.g. job (or jobs, TrainingJob).")]
Name = Annotated[str, typer.Argument(help="Resource name.")]


def _plural(kind: str) -> str:
    return KINDS.get(kind).PLURAL


def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML file with one or more resources.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update the resources in a YAML file (idempotent)."""
    specs = load_yaml_file(file)
    results = []
    with client(home, url, token) as c, console.status(f"applying {file}"):
        for spec in specs:
            try:
                results.append(c.apply(spec, base_dir=file.parent))
            except StratoError as exc:
                if exc.code in SPEC_ERRORS:  # a problem with what the file says: name the file
                    raise StratoError(f"{file}: {exc.message}", code=exc.code, details=exc.details) from None
                raise
    if output is Output.json:
        print_json(results if len(results) > 1 else results[0])
        return
    for item in results:
        console.print(f"{item['kind']} {item['name']} applied ({item['status']['state']})")


def get(
    kind: Kind,
    name: Annotated[str | None, typer.Argument(help="Name; all when omitted.")] = None,
    of: Annotated[
        str | None, typer.Argument(help="For sub-resources: the owner's name (get attempts job NAME).")
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """List resources of a kind, show one, or list the rows of one (attempts of a job)."""
    sub = SUB_VIEWS.get(kind.lower())
    if sub is not None:
        if not name or not of or KINDS.get(name) is not KINDS.get(sub.parent_kind):
            raise InvalidArgument(f"use: strato get {kind.lower()} {sub.parent_kind} NAME")
        with client(home, url, token) as c:
            rows = sub.fetch(c, of)
        print_json(rows) if output is Output.json else console.print(sub.table(rows))
        return
    cls = KINDS.get(kind)
    if output is Output.dot and (cls.KIND != "PipelineRun" or not name):
        raise InvalidArgument("-o dot shows one pipeline run's DAG: strato get pipelinerun NAME -o dot")
    with client(home, url, token) as c:
        data = c.get(cls.PLURAL, name) if name else c.list(cls.PLURAL)
    if output is Output.dot:
        from strato.cli.pipelines_output import run_dot

        run_dot(data)  # type: ignore[arg-type]
        return
    view = KIND_VIEWS.get(cls.KIND)
    if output is Output.json or view is None:
        print_json(data)
    elif name:
        view.detail(data)  # type: ignore[arg-type]
    else:
        console.print(view.table(data))  # type: ignore[arg-type]


def delete(kind: Kind, name: Name, home: Home = None, url: Url = None, token: Token = None) -> None:
    """Delete a resource (a running job is stopped first). Its artifacts are kept."""
    with client(home, url, token) as c:
        c.delete(_plural(kind), name)
    console.print(f"{KINDS.get(kind).KIND} {name} deleted")


def _only_jobs(kind: str) -> None:
    if _plural(kind) != "jobs":
        raise InvalidArgument(f"this verb works on jobs, not {kind!r}")


def logs(
    kind: Kind,
    name: Name,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep streaming.")] = False,
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default the latest).")] = None,
    worker: Annotated[int, typer.Option(min=0, help="Worker (rank) of a distributed job (default 0).")] = 0,
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print a job's log (stdout and stderr); one worker's of a distributed job."""
    _only_jobs(kind)
    with client(home, url, token) as c:
        for chunk in c.jobs.logs(name, follow=follow, attempt=attempt, worker=worker):
            sys.stdout.write(chunk)
            sys.stdout.flush()


def wait(
    kind: Kind,
    name: Name,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Wait until a job or tuning job ends; exit 0 when it completed, 1 otherwise."""
    if _plural(kind) == "tuningjobs":
        tuning.wait_tuning(name, timeout, home, url, token, output)
        return
    _only_jobs(kind)
    with client(home, url, token) as c, console.status(f"waiting for {name}"):
        job = c.jobs.wait(name, timeout=timeout)
    show_final(job.data, job_detail, output)


def stop(kind: Kind, name: Name, home: Home = None, url: Url = None, token: Token = None) -> None:
    """Ask a job to stop (SIGTERM, then SIGKILL after the grace period), or a tuning job (its trials)."""
    if _plural(kind) == "tuningjobs":
        tuning.stop(name, home, url, token)
        return
    _only_jobs(kind)
    with client(home, url, token) as c:
        job = c.jobs.stop(name)
    console.print(f"TrainingJob {name}: {job.status}")
