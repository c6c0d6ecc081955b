"""``strato models``: the model registry. Register a version from a job or a run, list and show models
and versions, move aliases, approve or reject with a reason, read the audit log, set model cards.
(An ``ApprovalPolicy`` is a resource: ``strato apply -f policy.yaml``, ``strato get policy NAME``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from strato.cli.common import Home, Output, OutputOpt, Token, Url, client
from strato.cli.models_output import (
    card_detail,
    cards_table,
    decision_detail,
    history_table,
    model_detail,
    models_table,
    version_detail,
)
from strato.cli.output import console, print_json
from strato.client.models import current_user
from strato.errors import ErrorCode, InvalidArgument, StratoError

app = typer.Typer(help="The model registry: versions, aliases, approvals, model cards.", no_args_is_help=True)
alias_app = typer.Typer(help="Point aliases (champion, challenger, ...) at versions.", no_args_is_help=True)
card_app = typer.Typer(help="Model cards, one revision per edit.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
app.add_typer(card_app, name="card")

Model = Annotated[str, typer.Argument(help="Registered model name.")]
Version = Annotated[str, typer.Argument(help="Version number, or an alias (champion).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).", show_default=False)]
By = Annotated[str | None, typer.Option("--by", help="Who (default: the OS user).", show_default=False)]


def _tags(values: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--tag {item!r} must look like KEY=VALUE")
        tags[key] = value
    return tags


def _show(data: Any, output: Output, view: Any) -> None:
    if output is Output.json:
        print_json(data)
    elif callable(view):
        view(data)


@app.command()
def register(
    name: Annotated[str, typer.Option("--name", help="Registered model name (created when new).")],
    job: Annotated[str | None, typer.Option("--job", help="A Completed training job.", show_default=False)] = None,
    run: Annotated[str | None, typer.Option("--run", help="An MLflow run id.", show_default=False)] = None,
    alias: Annotated[list[str] | None, typer.Option("--alias", help="Alias to set (repeatable).")] = None,
    description: Annotated[str | None, typer.Option("--description", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE (repeatable).")] = None,
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Register a new model version from a training job or a run; it starts PendingManualApproval."""
    if (job is None) == (run is None):
        raise InvalidArgument("give --job NAME or --run RUN_ID (one of them)")
    with client(home, url, token) as c, console.status(f"registering {name}"):
        version = c.models.register(
            name, job=job, run_id=run, description=description, tags=_tags(tag), aliases=alias, actor=by
        )
    if output is Output.json:
        print_json(version)
        return
    console.print(f"registered model {name} version {version['version']} ({version['status']})", highlight=False)
    version_detail(version)


@app.command("list")
def list_models(home: Home = None, url: Url = None, token: Token = None, output: OutputOpt = Output.table) -> None:
    """Every registered model, its latest version, aliases and policy."""
    with client(home, url, token) as c:
        models = c.models.list()
    _show(models, output, lambda data: console.print(models_table(data)))


@app.command()
def get(
    model: Model,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="One version (number or alias).", show_default=False)
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """A model with its versions (status, approvals, aliases), or one version."""
    with client(home, url, token) as c:
        data = c.models.get(model, version)
    _show(data, output, version_detail if version is not None else model_detail)


@app.command()
def update(
    model: Model,
    version: Annotated[str | None, typer.Option("--version", "-v", help="A version (default: the model).")] = None,
    description: Annotated[str | None, typer.Option("--description", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE (repeatable).")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Set the description or tags of a model or a version."""
    if description is None and not tag:
        raise InvalidArgument("nothing to update: give --description and/or --tag KEY=VALUE")
    with client(home, url, token) as c:
        data = c.models.update(model, version, description=description, tags=_tags(tag))
    _show(data, output, version_detail if version is not None else model_detail)


@app.command()
def delete(
    model: Model, version: Version, by: By = None, home: Home = None, url: Url = None, token: Token = None
) -> None:
    """Delete a version (its audit log and cards are kept; aliases on it are removed)."""
    with client(home, url, token) as c:
        c.models.delete_version(model, version, actor=by)
    console.print(f"model {model} version {version} deleted", highlight=False)


def _decide(verb: str, model: str, version: str, reason: str, by: str | None, output: Output, c_args: Any) -> None:
    with client(*c_args) as c:
        method = c.models.approve if verb == "approve" else c.models.reject
        result = method(model, version, reason=reason, actor=by or current_user())
    _show(result, output, decision_detail)


@app.command()
def approve(
    model: Model,
    version: Version,
    reason: Reason,
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Approve a version: its ApprovalPolicy's gates and requirements are checked first; once it has
    the approvals it needs, on_approval runs (alias, deploy request)."""
    _decide("approve", model, version, reason, by, output, (home, url, token))


@app.command()
def reject(
    model: Model,
    version: Version,
    reason: Reason,
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Reject a version (it can never be approved; register a new one)."""
    _decide("reject", model, version, reason, by, output, (home, url, token))


@app.command()
def history(
    model: Model,
    version: Version,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """The version's audit log: registration, approvals, rejections, refused approvals, aliases, deploys."""
    with client(home, url, token) as c:
        events = c.models.history(model, version)
    _show(events, output, lambda data: console.print(history_table(data)))


# Aliases ------------------------------------------------------------------------------------------------
@alias_app.command("set")
def alias_set(
    model: Model,
    alias: Annotated[str, typer.Argument(help="Alias, e.g. champion.")],
    version: Annotated[str, typer.Argument(help="Version number.")],
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Point ALIAS at VERSION (moving it from the version it pointed at)."""
    with client(home, url, token) as c:
        data = c.models.set_alias(model, alias, version, actor=by)
    if output is Output.json:
        print_json(data)
        return
    console.print(f"model {model}: alias {alias} -> version {data['version']}", highlight=False)


@alias_app.command("delete")
def alias_delete(
    model: Model,
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Remove an alias (the version stays)."""
    with client(home, url, token) as c:
        c.models.delete_alias(model, alias, actor=by)
    console.print(f"model {model}: alias {alias} deleted", highlight=False)


# Model cards --------------------------------------------------------------------------------------------
def _card_file(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise InvalidArgument(f"{file}: file not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{file}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{file}: a model card must be a mapping (intended_use, training_data, ...)")
    return data


@card_app.command("set")
def card_set(
    model: Model,
    version: Version,
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML with the card's fields (and markdown).")],
    by: By = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Store a new revision of the version's model card (its markdown becomes the MLflow description)."""
    card = _card_file(file)
    with client(home, url, token) as c:
        try:
            data = c.models.set_card(model, version, card, author=by)
        except StratoError as exc:
            if exc.code is ErrorCode.INVALID_ARGUMENT:  # a problem with what the file says: name the file
                raise StratoError(f"{file}: {exc.message}", code=exc.code, details=exc.details) from None
            raise
    if output is Output.json:
        print_json(data)
        return
    console.print(f"model card of {model} version {data['version']}: revision {data['revision']}", highlight=False)


@card_app.command("get")
def card_get(
    model: Model,
    version: Version,
    revision: Annotated[int | None, typer.Option("--revision", min=1, help="Default: the latest.")] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show the version's model card (the latest revision, or one)."""
    with client(home, url, token) as c:
        data = c.models.get_card(model, version, revision)
    _show(data, output, card_detail)


@card_app.command("history")
def card_history(
    model: Model,
    version: Version,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: OutputOpt = Output.table,
) -> None:
    """Every revision of the version's model card."""
    with client(home, url, token) as c:
        data = c.models.card_history(model, version)
    _show(data, output, lambda rows: console.print(cards_table(rows)))
