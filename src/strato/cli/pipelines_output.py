"""How pipeline runs look in the terminal: a table of runs, and one run as its DAG with live step states,
each step's job, cache hit or miss (and why) and duration; or the DAG in Graphviz dot."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from strato.cli.output import console, when


def _plan(item: dict[str, Any]) -> Any:
    from strato.pipelines.dag import compile_pipeline
    from strato.specs.pipeline import Pipeline

    status = item["status"]
    return compile_pipeline(Pipeline.model_validate(status["pipeline_spec"]), status["parameters"])


def _states(item: dict[str, Any]) -> dict[str, str]:
    return {name: step["state"] for name, step in (item["status"].get("steps") or {}).items()}


def runs_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "PIPELINE", "STATE", "STEPS DONE", "CACHED", "CREATED"):
        table.add_column(column)
    for item in items:
        steps = (item["status"].get("steps") or {}).values()
        done = sum(1 for s in steps if s["state"] in ("Succeeded", "Cached", "Skipped", "Failed"))
        cached = sum(1 for s in steps if s["state"] == "Cached")
        table.add_row(item["name"], item["spec"]["pipeline"], item["status"]["state"], f"{done}/{len(steps)}",
                      str(cached), when(item.get("created_at")))  # fmt: skip
    return table


def run_detail(item: dict[str, Any]) -> None:
    from strato.pipelines.render import render_dag

    status = item["status"]
    console.print(f"[bold]PipelineRun {item['name']}[/] of {item['spec']['pipeline']} "
                  f"(revision {status.get('revision', '-')}): {status['state']}")  # fmt: skip
    if status.get("message"):
        console.print(f"  {status['message']}", markup=False, highlight=False)
    if "pipeline_spec" not in status:
        return
    console.print(render_dag(_plan(item), _states(item)), markup=False, highlight=False)
    table = Table(box=None, header_style="bold")
    for column in ("STEP", "STATE", "JOB", "CACHE", "SECONDS", "NOTE"):
        table.add_column(column)
    for name, step in status["steps"].items():
        cache = step.get("cache") or {}
        seconds = ""
        if step.get("started_at") and step.get("ended_at"):
            seconds = f"{float(step['ended_at']) - float(step['started_at']):.1f}"
        note = step.get("message") or step.get("reason") or cache.get("reason") or ""
        if "result" in step:
            note = f"condition is {step['result']}"
        hit = "hit" if cache.get("hit") else "miss" if cache else "-"
        table.add_row(name, step["state"], step.get("job") or "-", hit, seconds, note)
    console.print(table)


def run_dot(item: dict[str, Any]) -> None:
    from strato.pipelines.render import to_dot

    print(to_dot(_plan(item), _states(item)))
