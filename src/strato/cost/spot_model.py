"""What spot capacity really costs: expected run time, its distribution and a deadline-safe fallback
plan, all under ONE interruption process (the spot issue's model, ``strato.jobs.spot``).

The process, in hours of wall-clock (= billed) time:

* interruptions arrive as a Poisson process of rate ``rate`` over all the time the job holds or is
  getting capacity: while it computes, while it writes a checkpoint and while it restarts;
* the work is ``work`` hours, cut into segments of ``interval`` hours; every segment but the last ends
  with a checkpoint costing ``cost`` hours; an interruption throws away the unfinished segment;
  ``interval=None`` (or >= work) means no checkpoint (an interruption restarts from zero) and
  ``interval=0`` means state is never lost (a stateless endpoint: an interruption costs only the restart);
* after an interruption the job spends ``restart`` hours getting capacity back and restoring, then
  resumes from the last checkpoint; an interruption during the restart restarts the restart.

Expected time is exact for this process: each segment of length L takes ``M e^{R/M} (e^{L/M} - 1)``
(Daly; ``strato.jobs.spot.expected_goodput`` computes it) and segments are independent because the
process has no memory. ``simulate_spot_hours`` is a Monte Carlo of the same process; deadline
probabilities and the spot-then-on-demand plan come from that seeded simulation (no closed form is
known for the completion-time distribution with checkpoints), so a quote is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from strato.errors import InvalidArgument
from strato.jobs.spot import expected_goodput, rate_per_hour
from strato.specs.spot import InterruptionModel

# Clouds that publish no interruption rate (GCP, Azure; AWS rows the Spot Advisor does not cover) are
# assumed to interrupt like the worst Spot Advisor bucket: a quote should not look better for lack of data.
UNPUBLISHED_BUCKET = ">20%"
DEFAULT_RUNS = 8000  # simulated runs per deadline probability: standard error <= 0.6 percentage points
DEFAULT_SEED = 7
_MAX_EXPONENT = 600.0  # e^600 hours is "never finishes"; beyond it math.exp overflows
_MAX_ATTEMPTS = 200_000


@lru_cache(maxsize=16)
def bucket_rate(bucket: str) -> float:
    """Interruptions per running hour for an AWS Spot Advisor bucket (the spot issue's mapping)."""
    rate = rate_per_hour(InterruptionModel(advisor_bucket=bucket))
    assert rate is not None
    return rate


def default_rate(cloud: str) -> float:
    """The rate assumed where the cloud publishes none (configurable per quote)."""
    return bucket_rate(UNPUBLISHED_BUCKET)


@dataclass(frozen=True)
class _Segments:
    """How ``work`` is cut: ``checkpointed`` segments of ``interval`` (+ checkpoint cost), then ``last``."""

    checkpointed: int
    interval: float
    last: float
    continuous: bool = False


def _segments(work: float, interval: float | None) -> _Segments:
    if interval is not None and interval == 0:
        return _Segments(0, 0.0, work, continuous=True)
    if interval is None or interval >= work:
        return _Segments(0, work, work)
    count = math.ceil(work / interval - 1e-9)
    return _Segments(count - 1, interval, work - (count - 1) * interval)


def _check(work: float, rate: float, interval: float | None, restart: float, cost: float) -> None:
    if not work > 0:
        raise InvalidArgument(f"work hours must be positive, got {work}")
    if rate < 0 or restart < 0 or cost < 0 or (interval is not None and interval < 0):
        raise InvalidArgument("rate, restart, checkpoint interval and checkpoint cost must not be negative")


def _segment_hours(length: float, rate: float, restart: float) -> float:
    """Expected wall time to get ``length`` hours done without an interruption (Daly's segment term)."""
    if length <= 0:
        return 0.0
    if rate <= 0:
        return length
    mtbi = 1.0 / rate
    if (length + restart) * rate > _MAX_EXPONENT:
        return math.inf
    return length / expected_goodput(length, None, 0.0, mtbi, restart)


def spot_expected_hours(
    work_hours: float,
    rate_per_hour: float,
    checkpoint_interval_hours: float | None,
    restart_hours: float,
    checkpoint_cost_hours: float = 0.0,
) -> float:
    """Expected wall-clock (billed) hours to finish ``work_hours`` on spot; ``inf`` when interruptions
    make it practically endless. Equals ``work / expected_goodput(...)`` when the interval divides the
    work and checkpoints are free; otherwise it also counts the shorter last segment and its missing
    checkpoint exactly."""
    _check(work_hours, rate_per_hour, checkpoint_interval_hours, restart_hours, checkpoint_cost_hours)
    seg = _segments(work_hours, checkpoint_interval_hours)
    if seg.continuous:
        # The interval -> 0 limit of the segment formula: only the restarts cost time.
        exponent = rate_per_hour * restart_hours
        return math.inf if exponent > _MAX_EXPONENT else work_hours * math.exp(exponent)
    last = _segment_hours(seg.last, rate_per_hour, restart_hours)
    if not seg.checkpointed:
        return last
    return seg.checkpointed * _segment_hours(seg.interval + checkpoint_cost_hours, rate_per_hour, restart_hours) + last


def _run(
    work: float,
    rate: float,
    interval: float | None,
    restart: float,
    cost: float,
    runs: int,
    seed: int,
    deadline: float | None = None,
    horizon: float = math.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``runs`` jobs; return (spot hours, on-demand hours) per run. With ``deadline``, a run
    moves to on-demand at the last moment that still finishes by the deadline for sure: when the time
    left equals a restart plus the uninterrupted time of the work not yet checkpointed. A run still going
    after ``horizon`` hours is stopped and reported as ``inf`` (it can only be later than that)."""
    _check(work, rate, interval, restart, cost)
    seg = _segments(work, interval)
    step = seg.interval + cost  # one checkpointed segment, checkpoint included
    rng = np.random.default_rng(seed)
    clock = np.zeros(runs)
    on_demand = np.zeros(runs)
    saved = np.zeros(runs, dtype=np.int64)  # checkpointed segments done
    done = np.zeros(runs)  # work done, continuous mode only
    overhead = np.zeros(runs)  # restart still to pay at the start of the current attempt
    active = np.arange(runs)
    for _ in range(_MAX_ATTEMPTS):
        if active.size == 0:
            break
        t, j, r0 = clock[active], saved[active], overhead[active]
        remaining: np.ndarray
        if seg.continuous:
            remaining = work - done[active]
            first_durable = t + r0  # once running again, every moment of progress is kept
        else:
            remaining = (seg.checkpointed - j) * step + seg.last
            first_durable = t + r0 + np.where(j < seg.checkpointed, step, seg.last)
        gap = rng.exponential(1.0 / rate, active.size) if rate > 0 else np.full(active.size, np.inf)
        finished = gap >= r0 + remaining
        if deadline is not None:
            switch_at = np.maximum(t, deadline - restart - remaining)
            switching = (first_durable > switch_at) & (gap >= switch_at - t)
            finished &= ~switching
            moved = active[switching]
            clock[moved] = switch_at[switching]
            on_demand[moved] = restart + remaining[switching]
        else:
            switching = np.zeros(active.size, dtype=bool)
        clock[active[finished]] = (t + r0 + remaining)[finished]
        cut = ~(finished | switching)
        hit = active[cut]
        progress = (gap - r0)[cut]
        clock[hit] = (t + gap)[cut]
        overhead[hit] = restart
        if seg.continuous:
            done[hit] += np.maximum(progress, 0.0)
        elif step > 0:
            kept = np.floor(np.maximum(progress, 0.0) / step + 1e-12).astype(np.int64)
            saved[hit] = np.minimum(saved[hit] + kept, seg.checkpointed)
        active = hit[clock[hit] <= horizon]
        clock[hit[clock[hit] > horizon]] = np.inf
    clock[active] = np.inf  # never finished within the attempt cap
    return clock, on_demand


def simulate_spot_hours(
    work_hours: float,
    rate_per_hour: float,
    checkpoint_interval_hours: float | None,
    restart_hours: float,
    checkpoint_cost_hours: float = 0.0,
    *,
    runs: int,
    seed: int,
) -> list[float]:
    """Wall-clock hours of ``runs`` simulated spot runs of the process above (seeded: reproducible)."""
    hours, _ = _run(
        work_hours, rate_per_hour, checkpoint_interval_hours, restart_hours, checkpoint_cost_hours, runs, seed
    )
    return hours.tolist()


@lru_cache(maxsize=4096)
def completion_probability(
    deadline_hours: float,
    work_hours: float,
    rate_per_hour: float,
    checkpoint_interval_hours: float | None,
    restart_hours: float,
    checkpoint_cost_hours: float = 0.0,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> float:
    """P(a spot run finishes within ``deadline_hours``): exact where the answer is certain (no
    interruptions, or the uninterrupted run is already too long), else the seeded simulation's share."""
    seg = _segments(work_hours, checkpoint_interval_hours)
    uninterrupted = work_hours + seg.checkpointed * checkpoint_cost_hours
    if uninterrupted > deadline_hours:
        return 0.0
    if rate_per_hour <= 0:
        return 1.0
    hours, _ = _run(
        work_hours,
        rate_per_hour,
        checkpoint_interval_hours,
        restart_hours,
        checkpoint_cost_hours,
        runs,
        seed,
        horizon=deadline_hours,
    )
    return float(np.mean(hours <= deadline_hours))


@dataclass(frozen=True)
class FallbackPlan:
    """Spot until the deadline forces a move, then on-demand for the rest (from the last checkpoint)."""

    spot_hours: float  # expected spot wall-clock hours
    on_demand_hours: float  # expected on-demand hours (restart included)
    switch_probability: float  # share of runs that had to move
    earliest_switch_hours: float  # the soonest a move can come (no progress kept by then)


@lru_cache(maxsize=4096)
def fallback_plan(
    deadline_hours: float,
    work_hours: float,
    rate_per_hour: float,
    checkpoint_interval_hours: float | None,
    restart_hours: float,
    checkpoint_cost_hours: float = 0.0,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> FallbackPlan | None:
    """The expected hours of the spot-then-on-demand plan, or None when even starting on on-demand at
    once (one restart's worth of setup plus the uninterrupted work) would miss the deadline."""
    seg = _segments(work_hours, checkpoint_interval_hours)
    uninterrupted = work_hours + seg.checkpointed * checkpoint_cost_hours
    earliest = deadline_hours - restart_hours - uninterrupted
    if earliest < 0:
        return None
    spot, on_demand = _run(
        work_hours,
        rate_per_hour,
        checkpoint_interval_hours,
        restart_hours,
        checkpoint_cost_hours,
        runs,
        seed,
        deadline=deadline_hours,
    )
    return FallbackPlan(
        spot_hours=float(np.mean(spot)),
        on_demand_hours=float(np.mean(on_demand)),
        switch_probability=float(np.mean(on_demand > 0)),
        earliest_switch_hours=earliest,
    )
