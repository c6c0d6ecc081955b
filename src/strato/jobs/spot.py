"""Spot economics as pure functions: when the simulated cloud interrupts, how long the notice is,
which checkpoint interval to use (Young/Daly), and how much of the bill was useful work (goodput).

Nothing here reads a clock or touches a process; the reconciler passes times in.
"""

from __future__ import annotations

import math
import random
from typing import Any

from strato.runtime import advised_interval as young_daly_interval
from strato.specs.spot import InterruptionModel, SpotPolicy

NOTICE_SECONDS = {"aws": 120.0, "gcp": 30.0, "azure": 30.0}  # what each cloud gives before the kill
HOURS_PER_MONTH = 730.0
# Spot Advisor buckets are shares of instances interrupted per month; take each bucket's middle.
BUCKET_MONTHLY_SHARE = {"<5%": 0.025, "5-10%": 0.075, "10-15%": 0.125, "15-20%": 0.175, ">20%": 0.25}


def notice_seconds(spot: SpotPolicy) -> float:
    return spot.notice if spot.notice is not None else NOTICE_SECONDS[spot.cloud]


def rate_per_hour(model: InterruptionModel) -> float | None:
    """Interruptions per running hour, or None when the model has no rate (exact times or none)."""
    if model.rate_per_hour:
        return model.rate_per_hour
    if model.advisor_bucket:
        # A share p of instances interrupted within a month means a Poisson rate of -ln(1 - p) per month.
        return -math.log(1 - BUCKET_MONTHLY_SHARE[model.advisor_bucket]) / HOURS_PER_MONTH
    return None


def mean_time_between_interruptions(model: InterruptionModel) -> float | None:
    rate = rate_per_hour(model)
    return None if rate is None else 3600.0 / rate


def next_interruption(
    model: InterruptionModel, *, job_started_at: float, attempt_started_at: float, attempt: int, interruptions: int
) -> float | None:
    """When the running attempt will be interrupted (unix seconds), or None if never.

    Exact times count from the job's first start, one per interruption; a time that passed while the
    job was restarting fires at once. A rate draws an exponential gap from the attempt's start, seeded
    by (seed, attempt) so a run is reproducible."""
    if model.at:
        if interruptions >= len(model.at):
            return None
        return max(job_started_at + model.at[interruptions], attempt_started_at)
    rate = rate_per_hour(model)
    if rate is None:
        return None
    gap = random.Random(f"{model.seed}/{attempt}").expovariate(rate / 3600.0)
    return attempt_started_at + gap


def expected_lost_work(interval: float, checkpoint_cost: float) -> float:
    """Work lost by one interruption at a uniformly random moment: half an interval plus an
    unfinished checkpoint."""
    return interval / 2 + checkpoint_cost


def expected_goodput(
    work: float, interval: float | None, checkpoint_cost: float, mtbi: float, restart_cost: float = 0.0
) -> float:
    """Useful / total time for ``work`` seconds of computation under exponential interruptions with
    mean ``mtbi``, checkpointing every ``interval`` seconds of work (None: never). Daly's model:
    each segment of ``interval + cost`` must run without interruption to count, and every interruption
    costs ``restart_cost`` before the segment starts again."""
    segment_work = work if interval is None or interval <= 0 or interval >= work else interval
    segment = segment_work + (0.0 if segment_work >= work else checkpoint_cost)
    segments = work / segment_work
    expected_segment_time = mtbi * math.exp(restart_cost / mtbi) * math.expm1(segment / mtbi)
    return work / (segments * expected_segment_time)


def optimal_interval(checkpoint_cost: float, mtbi: float, work: float, restart_cost: float = 0.0) -> float:
    """The interval that maximizes ``expected_goodput`` (golden-section search): the theoretical optimum
    the advice is measured against."""
    low, high = max(checkpoint_cost / 100, 1e-6), work
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if expected_goodput(work, a, checkpoint_cost, mtbi, restart_cost) >= expected_goodput(
            work, b, checkpoint_cost, mtbi, restart_cost
        ):
            high = b
        else:
            low = a
    return (low + high) / 2


__all__ = [
    "expected_goodput",
    "expected_lost_work",
    "goodput",
    "mean_time_between_interruptions",
    "next_interruption",
    "notice_seconds",
    "optimal_interval",
    "rate_per_hour",
    "young_daly_interval",
]


def goodput(attempts: list[dict[str, Any]]) -> dict[str, float]:
    """Billed seconds (every attempt's wall time), lost seconds (work since the last checkpoint when
    an attempt was interrupted or lost) and useful = billed - lost, over the recorded attempts."""
    billed = sum(max(0.0, float(a["ended_at"]) - float(a["started_at"])) for a in attempts if a.get("ended_at"))
    lost = sum(float(a.get("progress_lost", 0.0)) for a in attempts)
    useful = max(0.0, billed - lost)
    return {
        "billed_seconds": billed,
        "lost_seconds": lost,
        "useful_seconds": useful,
        "goodput": useful / billed if billed else 1.0,
    }
