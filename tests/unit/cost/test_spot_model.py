"""The spot cost model: its expected hours agree with a Monte Carlo of the same interruption process,
and the deadline helpers (completion probability, spot-then-on-demand plan) behave as documented."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from strato.cost import spot_model
from strato.cost.spot_model import (
    completion_probability,
    fallback_plan,
    simulate_spot_hours,
    spot_expected_hours,
)
from strato.errors import InvalidArgument
from strato.jobs.spot import expected_goodput, rate_per_hour
from strato.specs.spot import ADVISOR_BUCKETS, InterruptionModel

# (rate per hour, checkpoint interval, restart, work) - None: no checkpoints, 0: stateless (endpoint).
# Kept where a run needs at most ~e^3 attempts per segment, so 100k runs give a standard error <= 0.5%
# of the mean and the 2% bound is a 4-sigma test, not luck.
GRID = [
    (rate, interval, restart, work)
    for rate, interval, restart, work in itertools.product(
        (0.05, 0.5, 2.0), (None, 0.0, 0.25, 1.0), (0.05, 0.25), (1.5, 6.0)
    )
    if rate * (min(work, interval or work) + restart) <= 3.0
]
RUNS = 100_000


def test_the_grid_covers_every_checkpoint_mode_and_rate():
    assert len(GRID) >= 30
    assert {interval for _, interval, _, _ in GRID} == {None, 0.0, 0.25, 1.0}
    assert {rate for rate, *_ in GRID} == {0.05, 0.5, 2.0}


@pytest.mark.parametrize("cost", [0.0, 0.02])
def test_expected_hours_agree_with_monte_carlo_within_2_percent(cost):
    for seed, (rate, interval, restart, work) in enumerate(GRID):
        expected = spot_expected_hours(work, rate, interval, restart, cost)
        runs = np.array(simulate_spot_hours(work, rate, interval, restart, cost, runs=RUNS, seed=seed))
        mean = runs.mean()
        standard_error = runs.std() / math.sqrt(RUNS) / mean
        assert standard_error < 0.005, (rate, interval, restart, work)  # the 2% bound means something
        assert abs(mean / expected - 1) < 0.02, (rate, interval, restart, work, expected, mean)


def test_matches_the_spot_issues_goodput_model_when_the_interval_divides_the_work():
    for rate, restart in [(0.1, 0.05), (1.0, 0.2), (3.0, 0.0)]:
        mtbi = 1 / rate
        hours = spot_expected_hours(6.0, rate, 0.5, restart)
        assert hours == pytest.approx(6.0 / expected_goodput(6.0, 0.5, 0.0, mtbi, restart), rel=1e-12)
        assert spot_expected_hours(6.0, rate, None, restart) == pytest.approx(
            6.0 / expected_goodput(6.0, None, 0.0, mtbi, restart), rel=1e-12
        )


def test_closed_forms():
    # No checkpoints: Daly's M e^{R/M} (e^{W/M} - 1) for the whole run.
    assert spot_expected_hours(4.0, 0.5, None, 0.1) == pytest.approx(2 * math.exp(0.05) * math.expm1(2.0))
    # Stateless: only restarts cost time, W e^{lambda R}.
    assert spot_expected_hours(730.0, 0.01, 0.0, 0.05) == pytest.approx(730 * math.exp(0.0005))
    # No interruptions: the work plus its checkpoints (none after the last piece).
    assert spot_expected_hours(10.0, 0.0, 3.0, 0.5, 0.1) == pytest.approx(10.3)
    # The shorter last segment carries no checkpoint and is costed on its own length.
    rate, restart = 1.0, 0.1

    def segment(length: float) -> float:
        return math.exp(restart) * math.expm1(length)

    assert spot_expected_hours(10.0, rate, 3.0, restart, 0.2) == pytest.approx(3 * segment(3.2) + segment(1.0))


def test_more_interruptions_cost_more_and_checkpoints_help():
    hours = [spot_expected_hours(8.0, rate, None, 0.05) for rate in (0.0, 0.01, 0.1, 0.5)]
    assert hours == sorted(hours) and hours[0] == 8.0
    assert spot_expected_hours(8.0, 0.5, 0.5, 0.05) < spot_expected_hours(8.0, 0.5, None, 0.05)


def test_practically_endless_runs_are_infinite_not_an_overflow():
    assert spot_expected_hours(5000.0, 1.0, None, 0.05) == math.inf


def test_bucket_rates_are_the_spot_issues_mapping():
    for bucket in ADVISOR_BUCKETS:
        assert spot_model.bucket_rate(bucket) == rate_per_hour(InterruptionModel(advisor_bucket=bucket))
    assert spot_model.default_rate("gcp") == spot_model.bucket_rate(">20%")


def test_bad_numbers_are_refused():
    with pytest.raises(InvalidArgument, match="work hours must be positive"):
        spot_expected_hours(0.0, 0.1, None, 0.05)
    with pytest.raises(InvalidArgument, match="must not be negative"):
        spot_expected_hours(1.0, -0.1, None, 0.05)


def test_simulation_is_seeded():
    a = simulate_spot_hours(3.0, 0.5, 0.5, 0.1, runs=200, seed=3)
    assert a == simulate_spot_hours(3.0, 0.5, 0.5, 0.1, runs=200, seed=3)
    assert a != simulate_spot_hours(3.0, 0.5, 0.5, 0.1, runs=200, seed=4)
    assert min(a) >= 3.0 - 1e-9


def test_completion_probability_matches_a_closed_form():
    # No checkpoints, no restart, W <= D <= 2W: P(T <= D) = e^{-lambda W} (1 + lambda (D - W)).
    rate, work, deadline = 0.3, 2.0, 3.0
    exact = math.exp(-rate * work) * (1 + rate * (deadline - work))
    p = completion_probability(deadline, work, rate, None, 0.0, runs=20_000, seed=1)
    assert p == pytest.approx(exact, abs=3 * math.sqrt(exact * (1 - exact) / 20_000) + 1e-3)


def test_completion_probability_is_exact_where_certain():
    assert completion_probability(5.0, 6.0, 0.1, None, 0.05) == 0.0  # the uninterrupted run is too long
    assert completion_probability(6.0, 6.0, 0.0, None, 0.05) == 1.0  # nothing interrupts it
    assert completion_probability(6.05, 6.0, 0.0, 1.0, 0.05, 0.01) == 1.0
    assert completion_probability(6.04, 6.0, 0.0, 1.0, 0.05, 0.01) == 0.0  # five checkpoints of 0.01 h
    loose = completion_probability(100.0, 6.0, 0.2, 1.0, 0.05)
    tight = completion_probability(7.0, 6.0, 0.2, 1.0, 0.05)
    assert 0 < tight < loose <= 1


def test_fallback_always_finishes_by_the_deadline():
    deadline, work, restart = 10.0, 6.0, 0.1
    spot, on_demand = spot_model._run(work, 0.8, 1.0, restart, 0.0, 5000, 0, deadline=deadline)
    moved = on_demand > 0
    assert moved.any() and (~moved).any()
    assert np.all(spot + on_demand <= deadline + 1e-9)
    plan = fallback_plan(deadline, work, 0.8, 1.0, restart, runs=5000, seed=0)
    assert plan is not None
    assert plan.spot_hours == pytest.approx(spot.mean()) and plan.on_demand_hours == pytest.approx(on_demand.mean())
    assert plan.switch_probability == pytest.approx(moved.mean())
    assert plan.earliest_switch_hours == pytest.approx(deadline - restart - work)


def test_fallback_moves_more_often_as_interruptions_grow():
    calm = fallback_plan(12.0, 8.0, 0.01, 0.5, 0.05)
    stormy = fallback_plan(12.0, 8.0, 2.0, 0.5, 0.05)
    assert calm is not None and stormy is not None
    assert calm.switch_probability < stormy.switch_probability
    assert calm.on_demand_hours < stormy.on_demand_hours


def test_fallback_is_none_when_even_on_demand_would_be_late():
    assert fallback_plan(6.0, 6.0, 0.1, 1.0, 0.05) is None
