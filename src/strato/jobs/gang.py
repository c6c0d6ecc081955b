"""The workers of a distributed job as one gang: which tasks belong to the current attempt, which
worker's end broke the gang, and the one outcome the attempt had. Pure functions over ``TaskStatus``.

A gang lives and dies together. The reconciler starts it with ``submit_gang`` (all or none); when one
worker fails, vanishes or is interrupted, the others are stopped at once and the attempt ends as the
worker that broke it ended (so a vanished worker is retried as infrastructure trouble even when its
peers then failed with a broken connection, and a bug in worker 1 is an AlgorithmError of worker 1).
A single-worker job is a gang of one, and every function here gives for it what a single task gives.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from strato.compute.base import TaskState, TaskStatus


def task_ids(status: dict[str, Any]) -> list[str]:
    """The current attempt's task ids in rank order. Jobs stored before gangs existed have only
    ``task_id``, so a control plane upgraded while they run still finds their task."""
    ids = status.get("task_ids")
    if ids:
        return [str(task_id) for task_id in ids]
    return [str(status["task_id"])] if status.get("task_id") else []


def breaker(tasks: list[TaskStatus]) -> int | None:
    """The rank of the worker whose end broke the gang, or None while none did: a worker that vanished
    (infrastructure: its peers' errors follow from it) before one that failed, and among those the
    first to end. Workers that succeeded or that the platform stopped did not break anything."""
    candidates = [
        (task.state is not TaskState.LOST, task.ended_at if task.ended_at is not None else math.inf, rank)
        for rank, task in enumerate(tasks)
        if task.state.finished and task.state is not TaskState.SUCCEEDED and not task.stopped
    ]
    return min(candidates)[2] if candidates else None


def outcome(tasks: list[TaskStatus], broke: int | None = None) -> tuple[TaskStatus, int]:
    """One status for the whole finished attempt and the rank it speaks for.

    All succeeded: rank 0's success. Otherwise the worker that broke the gang (``broke``, recorded
    when the reconciler first saw it, else found now), or else the first that did not succeed (all
    were stopped: a stop or an interruption). Times span the gang; peak memory is the largest of one
    worker; CPU seconds add up over the workers."""
    if len(tasks) == 1:
        return tasks[0], 0
    failed = [r for r, task in enumerate(tasks) if task.state is not TaskState.SUCCEEDED]
    found = broke if broke is not None else breaker(tasks)
    rank = 0 if not failed else found if found is not None else failed[0]
    ended = [task.ended_at for task in tasks if task.ended_at is not None]
    started = [task.started_at for task in tasks if task.started_at is not None]
    peaks = [task.peak_memory for task in tasks if task.peak_memory is not None]
    cpu = [task.cpu_seconds for task in tasks if task.cpu_seconds is not None]
    chosen = tasks[rank]
    return (
        replace(
            chosen,
            started_at=min(started) if started else None,
            ended_at=max(ended) if ended else chosen.ended_at,
            message=f"worker {rank}: {chosen.message}" if chosen.message else f"worker {rank}",
            peak_memory=max(peaks) if peaks else None,
            cpu_seconds=sum(cpu) if cpu else None,
        ),
        rank,
    )
