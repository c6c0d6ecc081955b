"""Spot policies: interruption schedules, notices, Young/Daly advice, goodput, recovery strategies."""

from __future__ import annotations

import math

import pytest

from strato.jobs import spot
from strato.jobs.recovery import STRATEGIES
from strato.specs import InterruptionModel, RecoveryPolicy, SpotPolicy


def test_notice_defaults_per_cloud_and_override() -> None:
    assert spot.notice_seconds(SpotPolicy(cloud="aws")) == 120
    assert spot.notice_seconds(SpotPolicy(cloud="gcp")) == 30
    assert spot.notice_seconds(SpotPolicy(cloud="azure")) == 30
    assert spot.notice_seconds(SpotPolicy(cloud="aws", notice="5s")) == 5


def test_exact_times_count_from_the_first_start_one_per_interruption() -> None:
    model = InterruptionModel(at=["40s", "2m"])
    assert spot.next_interruption(model, job_started_at=100, attempt_started_at=100, attempt=1, interruptions=0) == 140
    # Restarted at 150 after the first: the second comes at 100 + 120.
    assert spot.next_interruption(model, job_started_at=100, attempt_started_at=150, attempt=2, interruptions=1) == 220
    # A time that passed during the restart fires at once.
    assert spot.next_interruption(model, job_started_at=100, attempt_started_at=300, attempt=2, interruptions=1) == 300
    assert spot.next_interruption(model, job_started_at=100, attempt_started_at=300, attempt=3, interruptions=2) is None


def test_rates_are_seeded_and_reproducible() -> None:
    model = InterruptionModel(rate_per_hour=20, seed=3)
    first = spot.next_interruption(model, job_started_at=0, attempt_started_at=0, attempt=1, interruptions=0)
    again = spot.next_interruption(model, job_started_at=0, attempt_started_at=0, attempt=1, interruptions=0)
    other = spot.next_interruption(
        model.model_copy(update={"seed": 4}), job_started_at=0, attempt_started_at=0, attempt=1, interruptions=0
    )
    assert first == again and first != other and first is not None and first > 0
    gaps = [
        spot.next_interruption(
            model.model_copy(update={"seed": s}), job_started_at=0, attempt_started_at=0, attempt=1, interruptions=0
        )
        for s in range(2000)
    ]
    mean = sum(g for g in gaps if g is not None) / len(gaps)
    assert 3600 / 20 * 0.9 < mean < 3600 / 20 * 1.1  # exponential gaps with the asked mean


def test_advisor_buckets_become_rates() -> None:
    rate = spot.rate_per_hour(InterruptionModel(advisor_bucket=">20%"))
    assert rate == pytest.approx(-math.log(0.75) / 730)
    assert spot.rate_per_hour(InterruptionModel(advisor_bucket="<5%")) < rate  # type: ignore[operator]
    assert spot.rate_per_hour(InterruptionModel()) is None


def test_young_daly_is_near_the_numerical_optimum() -> None:
    for cost, mtbi in ((5.0, 3600.0), (10.0, 720.0), (30.0, 180.0)):
        advised = spot.young_daly_interval(cost, mtbi)
        best = spot.optimal_interval(cost, mtbi, work=20 * mtbi)
        assert spot.expected_goodput(20 * mtbi, advised, cost, mtbi) >= 0.99 * spot.expected_goodput(
            20 * mtbi, best, cost, mtbi
        )
    assert spot.young_daly_interval(0, 100) == 0 and spot.young_daly_interval(80, 100) == 100


def test_checkpointing_beats_not_checkpointing_under_interruptions() -> None:
    work, cost, mtbi = 3600.0, 5.0, 600.0
    assert spot.expected_goodput(work, spot.young_daly_interval(cost, mtbi), cost, mtbi) > spot.expected_goodput(
        work, None, cost, mtbi
    )


def test_goodput_and_progress_lost_from_attempts() -> None:
    status = {"spot": {"interrupted_at": 150.0}, "attempt_running_at": 102.0, "checkpoint": {"saved_at": 130.0}}
    attempt = {"started_at": 100.0}
    assert spot.progress_lost(status, attempt, ended_at=160.0) == 20.0  # notice at 150, checkpoint at 130
    status["checkpoint"] = {"saved_at": 50.0}  # an older attempt's checkpoint does not count
    assert spot.progress_lost(status, attempt, ended_at=160.0) == 48.0
    attempts = [
        {"started_at": 100.0, "ended_at": 160.0, "progress_lost": 20.0},
        {"started_at": 170.0, "ended_at": 230.0},
    ]
    assert spot.goodput(attempts) == {
        "billed_seconds": 120.0,
        "lost_seconds": 20.0,
        "useful_seconds": 100.0,
        "goodput": 100.0 / 120.0,
    }
    # A gang of 2 workers bills (and loses) twice the wall time; the ratio is the same.
    gang = [{**attempt, "task_ids": ["a", "b"]} for attempt in attempts]
    assert spot.goodput(gang) == {
        "billed_seconds": 240.0,
        "lost_seconds": 40.0,
        "useful_seconds": 200.0,
        "goodput": 200.0 / 240.0,
    }


def test_recovery_strategies() -> None:
    assert STRATEGIES.get("restart")(5, RecoveryPolicy()).restart
    delayed = STRATEGIES.get("restart_after_delay")(1, RecoveryPolicy(delay="30s"))
    assert delayed.restart and delayed.delay == 30
    give_up = STRATEGIES.get("give_up_after")
    assert give_up(3, RecoveryPolicy()).restart and not give_up(4, RecoveryPolicy()).restart
    assert "more than max_interruptions (1)" in STRATEGIES.get("restart")(2, RecoveryPolicy(max_interruptions=1)).reason
    with pytest.raises(Exception, match=r"unknown recovery strategy 'restat'; did you mean 'restart'"):
        STRATEGIES.get("restat")
