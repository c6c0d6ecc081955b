"""The autoscaling policy: one table row per rule, then a few multi-step runs and the config checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from strato.serving.autoscaling import AutoscalingConfig, AutoscalingState, Decision, decide

S = AutoscalingState


@dataclass
class Case:
    config: AutoscalingConfig
    state: AutoscalingState
    obs: dict[str, Any]  # now, in_flight, running, queued, last_request_at
    desired: int
    new_state: AutoscalingState
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)  # a subset to check


def cfg(**kw: Any) -> AutoscalingConfig:
    return AutoscalingConfig(**{"min_replicas": 1, "max_replicas": 10, "downscale_delay": 0.0, **kw})


CASES = {
    "steady": Case(
        cfg(),
        S(2),
        {"now": 100.0, "in_flight": 8.0, "running": 2},
        2,
        S(2, last_request_at=100.0),
        "steady: in-flight 8.0 over 2 replicas at target 4.0 each needs 2",
        {"raw_target": 2, "proposed": 2, "pending_for": None, "running": 2, "in_flight": 8.0},
    ),
    "up-at-once": Case(
        cfg(max_replicas=8),
        S(4),
        {"now": 5.0, "in_flight": 37.0, "running": 4},
        8,
        S(8, last_request_at=5.0),
        "in-flight 37.0 over 4 replicas > target 4.0 each: 4 -> 8",
        {"needed": 10, "raw_target": 8, "proposed": 8, "desired": 4},
    ),
    "up-pending-starts": Case(
        cfg(upscale_delay=3.0),
        S(2),
        {"now": 10.0, "in_flight": 12.0, "running": 2},
        2,
        S(2, pending_since=10.0, pending_direction=1, last_request_at=10.0),
        "holding: scale-up 2 -> 3 pending for 0.0s of 3s (in-flight 12.0 over 2 replicas)",
        {"proposed": 3, "pending_for": 0.0},
    ),
    "up-pending-continues": Case(
        cfg(upscale_delay=3.0),
        S(2, pending_since=10.0, pending_direction=1),
        {"now": 11.2, "in_flight": 12.0, "running": 2},
        2,
        S(2, pending_since=10.0, pending_direction=1, last_request_at=11.2),
        "holding: scale-up 2 -> 3 pending for 1.2s of 3s (in-flight 12.0 over 2 replicas)",
        {"pending_for": pytest.approx(1.2)},
    ),
    "up-fires-after-delay": Case(
        cfg(upscale_delay=3.0),
        S(2, pending_since=10.0, pending_direction=1),
        {"now": 13.0, "in_flight": 12.0, "running": 2},
        3,
        S(3, last_request_at=13.0),
        "in-flight 12.0 over 2 replicas > target 4.0 each: 2 -> 3",
        {"pending_for": 3.0},
    ),
    "direction-change-resets": Case(
        cfg(upscale_delay=3.0, downscale_delay=60.0),
        S(2, pending_since=10.0, pending_direction=1),
        {"now": 12.0, "in_flight": 1.0, "running": 2},
        2,
        S(2, pending_since=12.0, pending_direction=-1, last_request_at=12.0),
        "holding: scale-down 2 -> 1 pending for 0.0s of 60s (in-flight 1.0 over 2 replicas)",
    ),
    "proposal-gone-resets": Case(
        cfg(upscale_delay=3.0),
        S(2, pending_since=10.0, pending_direction=1),
        {"now": 12.0, "in_flight": 8.0, "running": 2},
        2,
        S(2, last_request_at=12.0),
        "steady: in-flight 8.0 over 2 replicas at target 4.0 each needs 2",
    ),
    "down-pending": Case(
        cfg(downscale_delay=60.0),
        S(4, pending_since=0.0, pending_direction=-1),
        {"now": 59.9, "in_flight": 4.0, "running": 4},
        4,
        S(4, pending_since=0.0, pending_direction=-1, last_request_at=59.9),
        "holding: scale-down 4 -> 1 pending for 59.9s of 60s (in-flight 4.0 over 4 replicas)",
    ),
    "down-fires": Case(
        cfg(downscale_delay=60.0),
        S(4, pending_since=0.0, pending_direction=-1),
        {"now": 60.0, "in_flight": 4.0, "running": 4},
        1,
        S(1, last_request_at=60.0),
        "in-flight 4.0 over 4 replicas < target 4.0 each: 4 -> 1",
    ),
    "smoothing-up": Case(
        cfg(smoothing=0.5),
        S(2),
        {"now": 1.0, "in_flight": 40.0, "running": 2},
        6,
        S(6, last_request_at=1.0),
        "in-flight 40.0 over 2 replicas > target 4.0 each: 2 -> 6 (smoothing 0.5: step 4 of 8 toward 10)",
        {"raw_target": 10, "proposed": 6},
    ),
    "smoothing-down-rounds-up": Case(
        cfg(smoothing=0.5),
        S(10),
        {"now": 1.0, "in_flight": 2.0, "running": 10},
        5,
        S(5, last_request_at=1.0),
        "in-flight 2.0 over 10 replicas < target 4.0 each: 10 -> 5 (smoothing 0.5: step 5 of 9 toward 1)",
    ),
    "smoothing-at-least-one": Case(
        cfg(smoothing=0.1),
        S(2),
        {"now": 1.0, "in_flight": 12.0, "running": 2},
        3,
        S(3, last_request_at=1.0),
        "in-flight 12.0 over 2 replicas > target 4.0 each: 2 -> 3",
    ),
    "smoothing-float-noise": Case(  # 0.1 * 30 is 3.0000000000000004: still a step of 3
        cfg(smoothing=0.1, max_replicas=40),
        S(1),
        {"now": 1.0, "in_flight": 124.0, "running": 1},
        4,
        S(4, last_request_at=1.0),
        "in-flight 124.0 over 1 replica > target 4.0 each: 1 -> 4 (smoothing 0.1: step 3 of 30 toward 31)",
    ),
    "clamp-to-max": Case(
        cfg(max_replicas=5),
        S(5),
        {"now": 1.0, "in_flight": 1000.0, "running": 5},
        5,
        S(5, last_request_at=1.0),
        "steady: in-flight 1000.0 over 5 replicas at target 4.0 each needs 5",
        {"needed": 250, "raw_target": 5},
    ),
    "clamp-to-min": Case(
        cfg(min_replicas=3),
        S(6, last_request_at=0.0),
        {"now": 1.0, "in_flight": 0.0, "running": 6},
        3,
        S(3, last_request_at=0.0),
        "in-flight 0.0 over 6 replicas < target 4.0 each: 6 -> 3",
        {"needed": 0, "raw_target": 3},
    ),
    "queued-counts-as-load": Case(
        cfg(),
        S(1),
        {"now": 1.0, "in_flight": 4.0, "queued": 4, "running": 1},
        2,
        S(2, last_request_at=1.0),
        "in-flight 4.0 + 4 queued over 1 replica > target 4.0 each: 1 -> 2",
    ),
    "from-zero-ignores-delay": Case(
        cfg(min_replicas=0, upscale_delay=30.0),
        S(0, last_request_at=0.0),
        {"now": 900.0, "in_flight": 0.0, "queued": 1, "running": 0},
        1,
        S(1, last_request_at=900.0),
        "scale from zero: in-flight 0.0 + 1 queued over 0 replicas waiting: 0 -> 1",
    ),
    "from-zero-to-raw": Case(
        cfg(min_replicas=0, upscale_delay=30.0),
        S(0),
        {"now": 900.0, "in_flight": 0.0, "queued": 9, "running": 0},
        3,
        S(3, last_request_at=900.0),
        "scale from zero: in-flight 0.0 + 9 queued over 0 replicas waiting: 0 -> 3",
    ),
    "from-zero-in-flight": Case(
        cfg(min_replicas=0, upscale_delay=30.0),
        S(0, pending_since=1.0, pending_direction=1),
        {"now": 900.0, "in_flight": 0.5, "running": 0},
        1,
        S(1, last_request_at=900.0),
        "scale from zero: in-flight 0.5 over 0 replicas waiting: 0 -> 1",
    ),
    "stays-at-zero": Case(
        cfg(min_replicas=0),
        S(0, last_request_at=0.0),
        {"now": 900.0, "in_flight": 0.0, "running": 0},
        0,
        S(0, last_request_at=0.0),
        "scaled to zero: no request for 900.0s",
    ),
    "to-zero-after-idle": Case(
        cfg(min_replicas=0, idle_timeout=300.0, downscale_delay=600.0),
        S(1, last_request_at=0.0),
        {"now": 300.0, "in_flight": 0.0, "running": 1},
        0,
        S(0, last_request_at=0.0),
        "no request for 300.0s >= idle_timeout 300s: 1 -> 0",
        {"idle_for": 300.0, "raw_target": 0},
    ),
    "to-zero-from-several": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(4, last_request_at=0.0),
        {"now": 400.0, "in_flight": 0.0, "running": 4},
        0,
        S(0, last_request_at=0.0),
        "no request for 400.0s >= idle_timeout 300s: 4 -> 0",
    ),
    "not-idle-long-enough": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(1, last_request_at=0.0),
        {"now": 299.0, "in_flight": 0.0, "running": 1},
        1,
        S(1, last_request_at=0.0),
        "steady: in-flight 0.0 over 1 replica at target 4.0 each needs 1"
        " (keeping 1 until no request for 300s; last 299.0s ago)",
    ),
    "never-below-one-before-idle": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(4, last_request_at=0.0),
        {"now": 100.0, "in_flight": 0.0, "running": 4},
        1,
        S(1, last_request_at=0.0),
        "in-flight 0.0 over 4 replicas < target 4.0 each: 4 -> 1"
        " (keeping 1 until no request for 300s; last 100.0s ago)",
    ),
    "caller-last-request-updates-state": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(1, last_request_at=0.0),
        {"now": 400.0, "in_flight": 0.0, "running": 1, "last_request_at": 250.0},
        1,
        S(1, last_request_at=250.0),
        "steady: in-flight 0.0 over 1 replica at target 4.0 each needs 1"
        " (keeping 1 until no request for 300s; last 150.0s ago)",
        {"last_request_at": 250.0, "idle_for": 150.0},
    ),
    "older-caller-last-request-ignored": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(1, last_request_at=250.0),
        {"now": 400.0, "in_flight": 0.0, "running": 1, "last_request_at": 10.0},
        1,
        S(1, last_request_at=250.0),
        "steady: in-flight 0.0 over 1 replica at target 4.0 each needs 1"
        " (keeping 1 until no request for 300s; last 150.0s ago)",
    ),
    "no-request-ever-starts-idle-clock": Case(
        cfg(min_replicas=0, idle_timeout=300.0),
        S(1),
        {"now": 1000.0, "in_flight": 0.0, "running": 1},
        1,
        S(1, last_request_at=1000.0),
        "steady: in-flight 0.0 over 1 replica at target 4.0 each needs 1"
        " (keeping 1 until no request for 300s; last 0.0s ago)",
    ),
    "min-one-never-zero": Case(
        cfg(min_replicas=1, idle_timeout=300.0),
        S(1, last_request_at=0.0),
        {"now": 10_000.0, "in_flight": 0.0, "running": 1},
        1,
        S(1, last_request_at=0.0),
        "steady: in-flight 0.0 over 1 replica at target 4.0 each needs 1",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rule(case: Case) -> None:
    decision = decide(case.config, case.state, **case.obs)
    assert decision.desired == case.desired
    assert decision.state == case.new_state
    assert decision.state.desired == decision.desired
    assert decision.reason == case.reason
    for key, value in case.inputs.items():
        assert decision.inputs[key] == value, key
    # Everything the caller observed is recorded.
    for key in ("now", "in_flight", "running", "queued", "desired", "raw_target", "proposed", "last_request_at"):
        assert key in decision.inputs
    assert decision.inputs["running"] == case.obs["running"]
    assert decision.inputs["queued"] == case.obs.get("queued", 0)


def run(config: AutoscalingConfig, state: AutoscalingState, ticks: list[dict[str, Any]]) -> list[Decision]:
    out = []
    for obs in ticks:
        decision = decide(config, state, **obs)
        state = decision.state
        out.append(decision)
    return out


def test_upscale_delay_then_fires_over_ticks() -> None:
    ticks = [{"now": float(t), "in_flight": 20.0, "running": 2} for t in range(5)]
    got = run(cfg(upscale_delay=3.0), S(2), ticks)
    assert [d.desired for d in got] == [2, 2, 2, 5, 5]
    assert got[2].reason.startswith("holding: scale-up 2 -> 5 pending for 2.0s of 3s")


def test_smoothed_steps_each_wait_their_delay() -> None:
    ticks = [{"now": float(t), "in_flight": 40.0, "running": 2} for t in range(0, 7)]
    got = run(cfg(upscale_delay=2.0, smoothing=0.5), S(2), ticks)
    # 2 -> 6 after 2s, then a fresh 2s wait for 6 -> 8, and so on toward 10.
    assert [d.desired for d in got] == [2, 2, 6, 6, 6, 8, 8]


def test_flapping_load_never_scales_with_delays() -> None:
    loads = [20.0, 1.0, 20.0, 1.0, 20.0, 1.0]
    ticks = [{"now": float(t), "in_flight": load, "running": 2} for t, load in enumerate(loads)]
    got = run(cfg(upscale_delay=1.5, downscale_delay=1.5), S(2), ticks)
    assert [d.desired for d in got] == [2] * 6
    assert [d.state.pending_since for d in got] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_serverless_round_trip() -> None:
    config = cfg(min_replicas=0, idle_timeout=300.0, downscale_delay=60.0, upscale_delay=30.0)
    got = run(
        config,
        S(0),
        [
            {"now": 0.0, "in_flight": 0.0, "queued": 2, "running": 0},  # held request: up at once
            {"now": 10.0, "in_flight": 2.0, "running": 1},
            {"now": 20.0, "in_flight": 0.0, "running": 1},  # no load, but not idle yet
            {"now": 309.0, "in_flight": 0.0, "running": 1},
            {"now": 310.0, "in_flight": 0.0, "running": 1},  # 300s since the last load at 10s
            {"now": 900.0, "in_flight": 0.0, "running": 0},
        ],
    )
    assert [d.desired for d in got] == [1, 1, 1, 1, 0, 0]


def test_pure_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> float:
        raise AssertionError("decide read the clock")

    monkeypatch.setattr(time, "time", boom)
    monkeypatch.setattr(time, "monotonic", boom)
    config, state = cfg(upscale_delay=3.0), S(2)
    first = decide(config, state, now=1.0, in_flight=30.0, running=2)
    assert first == decide(config, state, now=1.0, in_flight=30.0, running=2)


@pytest.mark.parametrize(
    "kw",
    [
        {"min_replicas": -1},
        {"min_replicas": 3, "max_replicas": 2},
        {"min_replicas": 0, "max_replicas": 0},
        {"target_in_flight": 0},
        {"upscale_delay": -1},
        {"downscale_delay": -1},
        {"idle_timeout": -1},
        {"smoothing": 0},
        {"smoothing": 1.5},
    ],
)
def test_bad_config(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AutoscalingConfig(**kw)


def test_negative_observation_rejected() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        decide(cfg(), S(1), now=0.0, in_flight=-1.0, running=1)
