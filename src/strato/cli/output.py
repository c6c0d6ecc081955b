"""Printing resources: Rich tables for people, ``-o json`` for programs (kubectl's shape)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def duration(status: dict[str, Any]) -> str:
    started, ended = status.get("started_at"), status.get("ended_at")
    if not started:
        return "-"
    seconds = (ended or dt.datetime.now().timestamp()) - started
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def jobs_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "ATTEMPT", "DURATION", "COST", "METRICS", "CREATED"):
        table.add_column(column)
    for item in items:
        status = item["status"]
        metrics = ", ".join(f"{k}={v:g}" for k, v in list(status.get("metrics", {}).items())[:3])
        table.add_row(
            item["name"],
            _state(status["state"]),
            str(status.get("attempt", 0)),
            duration(status),
            _cost(status),
            metrics or "-",
            when(item.get("created_at")),
        )
    return table


def _cost(status: dict[str, Any]) -> str:
    cost = status.get("cost")
    return "-" if cost is None else f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def _state(state: str) -> str:
    color = {"Completed": "green", "Failed": "red", "Stopped": "yellow", "Running": "cyan"}.get(state)
    return f"[{color}]{state}[/]" if color else state


def job_detail(item: dict[str, Any]) -> None:
    status = item["status"]
    console.print(f"[bold]{item['kind']} {item['name']}[/]  {_state(status['state'])}")
    if status.get("message"):
        console.print(f"  message:  {status['message']}", markup=False, highlight=False)
    for key in ("attempt", "exit_code", "model_uri", "output_uri", "log_uri"):
        if status.get(key) is not None:
            console.print(f"  {key}: {status[key]}", markup=False, highlight=False)
    workers = int(item.get("spec", {}).get("instance_count", 1))
    if workers > 1:
        distribution = item["spec"].get("distribution", "none")
        console.print(
            f"  workers:  {workers} (distribution {distribution}); logs of one: strato logs job {item['name']} "
            "--worker K",
            markup=False,
            highlight=False,
        )
    console.print(f"  duration: {duration(status)}")
    if status.get("cost") is not None:
        console.print(f"  cost:     {_cost(status)} on {status.get('cost_target', 'the reference target')}")
    for name, value in status.get("metrics", {}).items():
        console.print(f"  metric    {name} = {value:g}")
    usage = status.get("usage") or {}
    if usage.get("peak_memory"):
        console.print(f"  peak mem: {usage['peak_memory'] / 2**20:.1f} MiB; cpu: {usage.get('cpu_seconds', 0):.1f}s")
    spot_detail(status)
    for warning in status.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {warning}", highlight=False)


def spot_detail(status: dict[str, Any]) -> None:
    """Interruptions, checkpoints, goodput and the checkpoint interval advice of a job."""
    spot = status.get("spot") or {}
    if spot:
        console.print(f"  spot: {spot.get('interruptions', 0)} interruption(s)")
    checkpoint = status.get("checkpoint") or {}
    if checkpoint:
        console.print(
            f"  checkpoints: {checkpoint['count']} saved, latest {checkpoint['version']}, "
            f"{checkpoint['cost']:.2f}s each (save + upload)"
        )
    good = status.get("goodput") or {}
    if good.get("billed_seconds"):
        console.print(
            f"  goodput: {good['goodput']:.1%} ({good['useful_seconds']:.1f}s useful of "
            f"{good['billed_seconds']:.1f}s billed; {good['lost_seconds']:.1f}s lost to interruptions)"
        )
    advice = status.get("advice")
    if advice:
        console.print(
            f"  advice: checkpoint every {advice['interval']:.0f}s (Young/Daly: cost "
            f"{advice['checkpoint_cost']:.2f}s, {advice['mtbi'] / 60:.0f} min between interruptions); "
            f"an interruption then loses {advice['expected_lost_per_interruption']:.0f}s on average"
        )


def attempts_table(attempts: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("ATTEMPT", "TASK", "STARTED", "ENDED", "OUTCOME", "EXIT", "DETAIL"):
        table.add_column(column)
    for item in attempts:
        table.add_row(
            str(item.get("attempt")),
            ", ".join(item["task_ids"]) if item.get("task_ids") else str(item.get("task_id", "-")),
            when(item.get("started_at")),
            when(item.get("ended_at")),
            str(item.get("outcome", "running")),
            str(item.get("exit_code", "-")),
            str(item.get("message", "")),
        )
    return table
