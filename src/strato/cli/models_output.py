"""How the model registry prints: the models, one model with its versions, one version, an approval
result, the audit log and a model card."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from strato.cli.output import console, when

STATUS_COLORS = {"Approved": "green", "Rejected": "red", "PendingManualApproval": "yellow"}


def status_markup(status: str) -> str:
    color = STATUS_COLORS.get(status)
    return f"[{color}]{status}[/]" if color else status


def _approvals(version: dict[str, Any]) -> str:
    approvals = version.get("approvals") or {}
    return f"{approvals.get('count', 0)}/{approvals.get('required', 1)}"


def models_table(models: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "LATEST", "ALIASES", "POLICY", "UPDATED"):
        table.add_column(column)
    for model in models:
        aliases = ", ".join(f"{a}={v}" for a, v in model.get("aliases", {}).items())
        table.add_row(
            model["name"],
            model.get("latest_version") or "-",
            aliases or "-",
            model.get("policy") or "-",
            when(model.get("updated_at")),
        )
    return table


def versions_table(versions: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("VERSION", "STATUS", "APPROVALS", "ALIASES"):
        table.add_column(column, no_wrap=True)
    table.add_column("CREATED")  # the run of each: get MODEL --version V
    for version in versions:
        table.add_row(
            version["version"],
            status_markup(version["status"]),
            _approvals(version),
            ", ".join(version.get("aliases", [])) or "-",
            when(version.get("created_at")),
        )
    return table


def model_detail(model: dict[str, Any]) -> None:
    console.print(f"[bold]model {model['name']}[/]", highlight=False)
    if model.get("description"):
        console.print(f"  description: {model['description']}", markup=False, highlight=False)
    for key, value in model.get("tags", {}).items():
        console.print(f"  tag {key} = {value}", markup=False, highlight=False)
    if model.get("policy"):
        console.print(f"  policy: ApprovalPolicy {model['policy']}", markup=False, highlight=False)
    versions = model.get("versions", [])
    if versions:
        console.print(versions_table(versions))
    else:
        console.print("  no versions")


def version_detail(version: dict[str, Any]) -> None:
    console.print(
        f"[bold]model {version['model']} version {version['version']}[/]  {status_markup(version['status'])}",
        highlight=False,
    )
    approvals = version.get("approvals") or {}
    by = ", ".join(approvals.get("by", [])) or "nobody yet"
    console.print(f"  approvals: {_approvals(version)} ({by})", markup=False, highlight=False)
    decided = version.get("decided")
    if decided and decided.get("action") != "submitted":
        console.print(
            f"  {decided['action']} by {decided['actor']} at {when(decided['at'])}: {decided['reason']}",
            markup=False,
            highlight=False,
        )
    for key in ("aliases", "run_id", "source", "uri"):
        value = version.get(key)
        if value:
            shown = ", ".join(value) if isinstance(value, list) else value
            console.print(f"  {key}: {shown}", markup=False, highlight=False)
    for key, value in version.get("tags", {}).items():
        console.print(f"  tag {key} = {value}", markup=False, highlight=False)
    if version.get("description"):
        first = version["description"].strip().splitlines()[0]
        console.print(f"  description: {first}", markup=False, highlight=False)


def decision_detail(result: dict[str, Any]) -> None:
    """The answer to approve or reject: the message, each policy check, what on_approval did."""
    console.print(result["message"], markup=False, highlight=False)
    for check in result.get("checks", []):
        mark = "[green]ok[/]  " if check["passed"] else "[red]fail[/]"
        console.print(f"  {mark} ", end="")
        console.print(check["message"], markup=False, highlight=False)
    for action in result.get("actions", []):
        console.print(f"  then: {action}", markup=False, highlight=False)
    for note in result.get("notes", []):
        console.print(f"  [yellow]note:[/] {note}", highlight=False)


def history_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("AT", "ACTION", "STATUS", "BY", "REASON", "DETAILS"):
        table.add_column(column)
    for event in events:
        details = event.get("details") or {}
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if k != "checks")
        table.add_row(
            when(event["at"]),
            event["action"],
            status_markup(event["status"]),
            event["actor"],
            event.get("reason") or "-",
            shown or "-",
        )
    return table


def card_detail(revision: dict[str, Any]) -> None:
    console.print(
        f"[bold]model card of {revision['model']} version {revision['version']}[/] "
        f"(revision {revision['revision']}, by {revision['author']} at {when(revision['at'])})",
        highlight=False,
    )
    console.print(revision["markdown"], markup=False, highlight=False)


def cards_table(revisions: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("REVISION", "AUTHOR", "AT", "OWNER"):
        table.add_column(column)
    for revision in revisions:
        table.add_row(
            str(revision["revision"]), revision["author"], when(revision["at"]), revision["card"].get("owner", "-")
        )
    return table
