"""What a trial's training job says about the trial: its state, its objective, its intermediate values,
and the tuning job's counts and best trial. Pure functions over records, so they are easy to test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from strato.jobs.states import JobState
from strato.specs import labels
from strato.store.metadata import MetricPoint, ResourceRecord
from strato.tuning.states import TrialState

LABEL_JOB = labels.TUNING_JOB
LABEL_UID = labels.TUNING_UID
LABEL_TRIAL = labels.TRIAL
PRUNED = "Pruned"  # the job's desired ``tuning_outcome`` when hyperband stopped it


def job_name(tuning_name: str, number: int) -> str:
    return f"{tuning_name}-{number}"


def new_entry(tuning_name: str, number: int, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": number,
        "job": job_name(tuning_name, number),
        "state": TrialState.PENDING.value,
        "hyperparameters": dict(params),
        "objective": None,
        "step": None,
        "value": None,
        "message": "",
    }


def one_line(message: str) -> str:
    """A job's message in one line: a failure's first line and its last log line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{lines[0]} {lines[-1]}"


def running_state(job: ResourceRecord) -> TrialState:
    """The trial state of a job that has not ended."""
    state = JobState(job.state)
    if state is JobState.PENDING:
        return TrialState.PENDING
    if state is JobState.STOPPING or job.desired.get("stop"):
        return TrialState.STOPPING
    return TrialState.RUNNING


def reported_metrics(job: ResourceRecord) -> list[str]:
    return sorted(name for name in job.status.get("metrics", {}) if not name.startswith("system/"))


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    objective: float | None
    message: str
    objective_missing: bool = False


def outcome(job: ResourceRecord, metric: str) -> Outcome:
    """How an ended job ends its trial. The objective is the metric's final (last reported) value."""
    state = JobState(job.state)
    if state is JobState.COMPLETED:
        value = job.status.get("metrics", {}).get(metric)
        if value is None:
            others = reported_metrics(job)
            said = f"it reported: {', '.join(others)}" if others else "it reported no metrics"
            return Outcome(
                TrialState.FAILED,
                None,
                f"completed without reporting the objective metric {metric!r} ({said}); report it with "
                f"strato.runtime.report({metric!r}=value) or a metric_definitions regex",
                objective_missing=True,
            )
        if not math.isfinite(float(value)):
            return Outcome(TrialState.FAILED, None, f"the objective metric {metric!r} ended as {value}")
        return Outcome(TrialState.COMPLETED, float(value), f"{metric} = {float(value):g}")
    message = one_line(str(job.status.get("message", "")))
    if state is JobState.STOPPED:
        if job.desired.get("tuning_outcome") == PRUNED:
            return Outcome(TrialState.PRUNED, None, message or "pruned")
        return Outcome(TrialState.STOPPED, None, message or "stopped")
    return Outcome(TrialState.FAILED, None, message or f"its training job ended {state}")


def intermediate_values(points: list[MetricPoint]) -> dict[int, float]:
    """Each report of the objective metric by step: the reported ``step``, or the report's position
    (1, 2, ...) when the trial gives none (metrics from a regex). A step reported twice keeps the last."""
    series: dict[int, float] = {}
    for position, point in enumerate(points, 1):
        if math.isfinite(point.value):
            series[point.step if point.step is not None else position] = point.value
    return series


def counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    result = {state.value.lower(): 0 for state in TrialState}
    for entry in entries:
        result[str(entry["state"]).lower()] += 1
    result["total"] = len(entries)
    return result


def best(entries: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    done = [e for e in entries if e["state"] == TrialState.COMPLETED and e.get("objective") is not None]
    if not done:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    top = min(done, key=lambda e: (sign * float(e["objective"]), int(e["number"])))
    return {
        "number": top["number"],
        "job": top["job"],
        "hyperparameters": top["hyperparameters"],
        "objective": top["objective"],
    }
