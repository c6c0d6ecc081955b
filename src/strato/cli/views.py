"""How each kind prints: a table for ``get KIND``, a detail view for ``get KIND NAME``, and the
sub-resource lists (``get attempts job NAME``). A new kind registers its views here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from strato.cli import output, pipelines_output, tuning_output
from strato.client import Client


@dataclass(frozen=True)
class KindView:
    table: Callable[[list[dict[str, Any]]], Table]
    detail: Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class SubView:
    """Rows that belong to one resource, e.g. the attempts of a job."""

    parent_kind: str  # a KINDS name, e.g. "job"
    fetch: Callable[[Client, str], list[dict[str, Any]]]
    table: Callable[[list[dict[str, Any]]], Table]


KIND_VIEWS: dict[str, KindView] = {
    "TrainingJob": KindView(table=output.jobs_table, detail=output.job_detail),
    "TuningJob": KindView(table=tuning_output.tuning_table, detail=tuning_output.tuning_detail),
    "PipelineRun": KindView(table=pipelines_output.runs_table, detail=pipelines_output.run_detail),
}

SUB_VIEWS: dict[str, SubView] = {
    "attempts": SubView(
        parent_kind="job",
        fetch=lambda client, name: list(client.get("jobs", name)["status"].get("attempts", [])),
        table=output.attempts_table,
    ),
    "trials": SubView(
        parent_kind="tuning",
        fetch=lambda client, name: client.tuning.trials(name),
        table=tuning_output.trials_table,
    ),
}
