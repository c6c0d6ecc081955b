"""``strato jobs submit``: run a script as a training job without writing YAML."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.output import console, job_detail, print_json
from strato.errors import InvalidArgument
from strato.specs import parse_spec
from strato.units import parse_duration

app = typer.Typer(help="Training jobs.", no_args_is_help=True)

Pairs = Annotated[list[str] | None, typer.Option(show_default=False)]


def _pairs(values: list[str] | None, option: str, *, typed: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{option} {item!r} must look like NAME=VALUE")
        result[key] = yaml.safe_load(value) if typed and value else value
    return result


def default_name(script: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", script.stem).strip("-") or "job"
    return f"{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"


@app.command()
def submit(
    script: Annotated[Path, typer.Argument(help="Python script to run (python SCRIPT --hp-name value ...).")],
    name: Annotated[str | None, typer.Option(help="Job name (default: script name and time).")] = None,
    code: Annotated[Path | None, typer.Option(help="Code directory to snapshot (default: the script's).")] = None,
    hp: Pairs = None,
    input: Pairs = None,
    env: Pairs = None,
    secret: Pairs = None,
    metric: Pairs = None,
    cpus: Annotated[float | None, typer.Option(help="CPU cores.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory, like 2Gi.")] = None,
    max_runtime: Annotated[str | None, typer.Option(help="Stop after this long, like 30m.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts on infrastructure failures.")] = None,
    instance_count: Annotated[int | None, typer.Option(help="Workers, started together (all or none).")] = None,
    distribution: Annotated[str | None, typer.Option(help="none, or torch (torchrun-style environment).")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Run on (simulated) spot capacity.")] = False,
    interrupt_at: Annotated[
        str | None, typer.Option(help="Spot interruptions at these times since the start, like 40s,2m.")
    ] = None,
    interruption_rate: Annotated[float | None, typer.Option(help="Spot interruptions per hour (seeded).")] = None,
    notice: Annotated[str | None, typer.Option(help="Spot notice before the kill, like 30s.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job and stream its log.")] = False,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Submit a script as a training job. Repeat --hp NAME=VALUE, --input CHANNEL=PATH, --env,
    --secret and --metric NAME=REGEX as needed."""
    if not script.is_file():
        raise InvalidArgument(f"script {script} does not exist")
    code_dir = (code or script.parent).resolve()
    try:
        relative = script.resolve().relative_to(code_dir)
    except ValueError:
        raise InvalidArgument(f"script {script} is not inside the code directory {code_dir}") from None
    document: dict[str, Any] = {
        "kind": "TrainingJob",
        "name": name or default_name(script),
        "code": str(code_dir),
        "command": ["python", relative.as_posix()],
        "hyperparameters": _pairs(hp, "--hp", typed=True),
        "inputs": _pairs(input, "--input"),
        "environment": _pairs(env, "--env"),
        "secrets": _pairs(secret, "--secret"),
        "metric_definitions": [{"name": k, "regex": v} for k, v in _pairs(metric, "--metric").items()],
    }
    resources = {k: v for k, v in {"cpus": cpus, "memory": memory}.items() if v is not None}
    if resources:
        document["resources"] = resources
    if max_runtime:
        document["max_runtime"] = max_runtime
    if max_attempts:
        document["retry"] = {"max_attempts": max_attempts}
    if instance_count is not None:
        document["instance_count"] = instance_count
    if distribution is not None:
        document["distribution"] = distribution
    if spot or interrupt_at or interruption_rate or notice:
        interruptions: dict[str, Any] = {}
        if interrupt_at:
            interruptions["at"] = [part.strip() for part in interrupt_at.split(",") if part.strip()]
        if interruption_rate:
            interruptions["rate_per_hour"] = interruption_rate
        document["spot"] = {"interruptions": interruptions, **({"notice": notice} if notice else {})}
    spec = parse_spec(document, where="jobs submit")
    with client(home, url, token) as c:
        job = c.jobs.submit(spec)  # type: ignore[arg-type]
        if output is not Output.json:
            console.print(f"TrainingJob {job.name} submitted")
        if wait:
            stream = output is not Output.json
            for chunk in c.jobs.logs(job.name, follow=True):
                if stream:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            job = c.jobs.wait(job.name)
    if output is Output.json:
        print_json(job.data)
    elif wait:
        job_detail(job.data)
    if wait and job.status != "Completed":
        raise typer.Exit(1)


@app.command()
def interrupt(
    name: Annotated[str, typer.Argument(help="Job name.")],
    notice: Annotated[
        str | None, typer.Option(help="Notice before the kill, like 30s (default: the job's cloud's).")
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Interrupt a running job as a spot reclaim would; it recovers from its last checkpoint."""
    try:
        seconds = parse_duration(notice) if notice else None
    except ValueError as exc:
        raise InvalidArgument(f"--notice: {exc}") from None
    with client(home, url, token) as c:
        c.jobs.interrupt(name, seconds)
    console.print(f"TrainingJob {name}: interruption requested")


@app.command()
def watch(
    name: Annotated[str, typer.Argument(help="Job name.")],
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Follow a job's state changes (attempts, phases, interruptions) until it ends; exit 1 unless Completed."""
    seen = 0
    with client(home, url, token) as c:
        while True:
            events = c.jobs.events(name)
            for event in events[seen:]:
                stamp = time.strftime("%H:%M:%S", time.localtime(event["at"]))
                console.print(
                    f"{stamp}  {event['state']:<11} {event['reason']:<20} {event['message']}",
                    markup=False,
                    highlight=False,
                )
            seen = len(events)
            job = c.jobs.get(name)
            if job.done and seen == len(c.jobs.events(name)):
                break
            time.sleep(0.5)
    if job.status != "Completed":
        raise typer.Exit(1)
