"""How tuning jobs print: the list, one tuning job with its best trial, and its trials."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from strato.cli.output import console, duration, when

COLORS = {
    "Completed": "green",
    "Failed": "red",
    "Stopped": "yellow",
    "Stopping": "yellow",
    "Running": "cyan",
    "Pruned": "magenta",
}


def state_markup(state: str) -> str:
    color = COLORS.get(state)
    return f"[{color}]{state}[/]" if color else state


def _number(value: Any, digits: int = 6) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_number(v, 4)}" for k, v in params.items())


def progress(status: dict[str, Any]) -> str:
    """``4/10 trials: 2 completed, 1 pruned, 1 running`` (only the counts that are not zero)."""
    counts = status.get("counts") or {}
    parts = [
        f"{counts[k]} {k}"
        for k in ("completed", "pruned", "failed", "stopped", "running", "pending", "stopping")
        if counts.get(k)
    ]
    started = counts.get("total", 0)
    return f"{started}/{status.get('budget', '?')} trials" + (f": {', '.join(parts)}" if parts else "")


def tuning_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "STRATEGY", "TRIALS", "BEST", "BEST TRIAL", "CREATED"):
        table.add_column(column, min_width=len(column), overflow="fold")
    for item in items:
        status, spec = item["status"], item["spec"]
        best = status.get("best")
        counts = status.get("counts") or {}
        table.add_row(
            item["name"],
            state_markup(status["state"]),
            spec.get("strategy", "-"),
            f"{counts.get('total', 0)}/{status.get('budget', '?')}",
            _number(best["objective"]) if best else "-",
            best["job"] if best else "-",
            when(item.get("created_at")),
        )
    return table


def tuning_detail(item: dict[str, Any]) -> None:
    status, spec = item["status"], item["spec"]
    objective = spec["objective"]
    console.print(f"[bold]TuningJob {item['name']}[/]  {state_markup(status['state'])}")
    if status.get("message"):
        console.print(f"  message:   {status['message']}", markup=False, highlight=False)
    console.print(
        f"  strategy:  {spec['strategy']} (seed {spec.get('seed', 0)}), max_parallel "
        f"{spec.get('max_parallel', 1)}, max_failed {spec.get('max_failed')}",
        highlight=False,
    )
    console.print(f"  objective: {objective['direction']} {objective['metric']}", markup=False, highlight=False)
    console.print(f"  trials:    {progress(status)}", highlight=False)
    console.print(f"  duration:  {duration(status)}")
    best = status.get("best")
    if best:
        console.print(
            f"  best:      trial {best['number']} ({best['job']}): {objective['metric']} = "
            f"{_number(best['objective'])}",
            markup=False,
            highlight=False,
        )
        for name, value in best["hyperparameters"].items():
            console.print(f"             {name} = {_number(value)}", markup=False, highlight=False)


def _note(trial: dict[str, Any]) -> str:
    if trial["state"] == "Pruned" and trial.get("pruned_at") is not None:
        return f"pruned at step {trial['pruned_at']}"
    if trial["state"] in ("Failed", "Stopped"):
        message = str(trial.get("message", ""))
        return message if len(message) <= 80 else message[:77] + "..."
    return ""


def trials_table(trials: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("TRIAL", "JOB", "STATE", "STEP", "LAST", "OBJECTIVE", "HYPERPARAMETERS", "NOTE"):
        # Headers never fold on a narrow terminal (or a pipe's 80 columns); long values do.
        fold = column in ("HYPERPARAMETERS", "NOTE")
        table.add_column(column, min_width=len(column), overflow="fold", no_wrap=not fold)
    for trial in trials:
        table.add_row(
            str(trial["number"]),
            trial["job"],
            state_markup(trial["state"]),
            _number(trial.get("step")),
            _number(trial.get("value")),
            _number(trial.get("objective")),
            _params(trial.get("hyperparameters", {})),
            _note(trial),
        )
    return table
