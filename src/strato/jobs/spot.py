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


def goodput(attempts: list[dict[str, Any]]) -> dict[str, float]:
    """Billed seconds (every attempt's wall time on each of its workers: a gang of N bills N
    instances), lost seconds (work since the last checkpoint when an attempt was interrupted or lost,
    on every worker) and useful = billed - lost, over the recorded attempts."""

    def workers(attempt: dict[str, Any]) -> int:
        return len(attempt.get("task_ids") or ()) or 1

    billed = sum(
        max(0.0, float(a["ended_at"]) - float(a["started_at"])) * workers(a) for a in attempts if a.get("ended_at")
    )
    lost = sum(float(a.get("progress_lost", 0.0)) * workers(a) for a in attempts)
    useful = max(0.0, billed - lost)
    return {
        "billed_seconds": billed,
        "lost_seconds": lost,
        "useful_seconds": useful,
        "goodput": useful / billed if billed else 1.0,
    }


# Bookkeeping on a job's status dict (pure: dict in, dict changed) ------------------------------------
def record_checkpoint(status: dict[str, Any], saved: dict[str, Any]) -> None:
    """Remember the newest checkpoint and the running mean of what one costs (save + upload)."""
    checkpoint = status.setdefault("checkpoint", {"count": 0, "total_cost": 0.0})
    checkpoint["count"] = int(checkpoint["count"]) + 1
    checkpoint["total_cost"] = float(checkpoint["total_cost"]) + float(saved["cost"])
    checkpoint.update(
        version=saved["version"], saved_at=float(saved["saved_at"]), cost=checkpoint["total_cost"] / checkpoint["count"]
    )


def progress_lost(status: dict[str, Any], attempt: dict[str, Any], ended_at: float) -> float:
    """Seconds of work an interrupted or lost attempt threw away: from its last checkpoint (or from the
    moment its code started) to the interruption notice (or its end)."""
    spot_state = status.get("spot") or {}
    cut = float(spot_state.get("interrupted_at") or ended_at)
    since = float(status.get("attempt_running_at") or attempt["started_at"])
    saved_at = (status.get("checkpoint") or {}).get("saved_at")
    if saved_at is not None and float(saved_at) >= float(attempt["started_at"]):
        since = max(since, float(saved_at))
    return max(0.0, cut - since)


def spot_environment(spot: SpotPolicy | None, status: dict[str, Any]) -> dict[str, str]:
    """What ``strato.runtime.should_checkpoint()`` needs to follow the Young/Daly advice."""
    if spot is None or not spot.enabled:
        return {}
    env = {}
    mtbi = mean_time_between_interruptions(spot.interruptions)
    if mtbi is not None:
        env["STRATO_MTBI_SECONDS"] = f"{mtbi:.3f}"
    cost = (status.get("checkpoint") or {}).get("cost")
    if cost:
        env["STRATO_CHECKPOINT_COST"] = f"{float(cost):.3f}"
    return env


def advice(spot: SpotPolicy | None, status: dict[str, Any]) -> dict[str, float] | None:
    """The advised checkpoint interval for this job and the work one interruption is expected to cost."""
    mtbi = mean_time_between_interruptions(spot.interruptions) if spot else None
    cost = (status.get("checkpoint") or {}).get("cost")
    if mtbi is None or not cost:
        return None
    interval = young_daly_interval(float(cost), mtbi)
    return {
        "interval": interval,
        "checkpoint_cost": float(cost),
        "mtbi": mtbi,
        "expected_lost_per_interruption": expected_lost_work(interval, float(cost)),
    }
