"""The autoscaling policy for an endpoint variant: a pure function from (config, state, observations) to a
decision, like Ray Serve's ``autoscaling_policy.py``. No I/O and no clock: the caller passes ``now`` and the
load it measured, stores the returned state, and records the decision's ``reason`` and ``inputs``.

Rules, applied in this order on each call:

1. **Load.** ``needed = ceil((in_flight + queued) / target_in_flight)`` (at least 1 when there is any
   load), clamped to ``[min_replicas, max_replicas]``. That is the raw target.
2. **From zero.** When ``desired == 0`` and there is any load (a request held waiting for a replica, or
   one in flight), go to ``max(1, raw)`` at once, ignoring ``upscale_delay``: a caller is waiting.
3. **To zero** (``min_replicas == 0`` only). With no load, the raw target is 0; the variant goes to 0 once
   no request was seen for ``idle_timeout`` seconds (at once: the idle timeout is its own delay), and until
   then it keeps at least 1 replica. The last request time is the latest of the state's, the caller's
   ``last_request_at`` and ``now`` when there is load; with none ever seen, the idle clock starts at the
   first decision (a newly deployed variant is not idle yet).
4. **Smoothing.** The step from ``desired`` toward the raw target is ``ceil(smoothing * |raw - desired|)``,
   at least 1, so ``smoothing < 1`` approaches a large change over several decisions.
5. **Delays.** A change is applied only once the proposal (its direction) has persisted ``upscale_delay``
   (up) or ``downscale_delay`` (down) seconds; 0 applies it at once. A proposal that changes direction or
   disappears restarts the wait; after a change is applied the wait restarts too, so each smoothed step
   waits its own delay (as Ray Serve resets its decision counter).

``running`` (replicas actually up) is only recorded: the policy works on ``desired``, so replicas that
are slow to start do not make it ask for more again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# Float noise must not add a replica: 0.1 * 30 is 3.0000000000000004, and ceil() of it would be 4.
_EPS = 1e-9


@dataclass(frozen=True)
class AutoscalingConfig:
    min_replicas: int = 1  # 0 = serverless: scale to zero after idle_timeout with no request
    max_replicas: int = 1
    target_in_flight: float = 4.0  # desired concurrent requests per replica
    upscale_delay: float = 0.0  # seconds the need for more replicas must persist before scaling up
    downscale_delay: float = 60.0  # seconds the need for fewer must persist before scaling down
    smoothing: float = 1.0  # 0 < s <= 1: how much of the computed change is applied at once (s<1 damps)
    idle_timeout: float = 300.0  # min_replicas == 0 only: seconds without requests before going to 0

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValueError(f"min_replicas must be >= 0, got {self.min_replicas}")
        if self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"max_replicas must be >= max(1, min_replicas), got {self.max_replicas}")
        if self.target_in_flight <= 0:
            raise ValueError(f"target_in_flight must be > 0, got {self.target_in_flight}")
        if self.upscale_delay < 0 or self.downscale_delay < 0 or self.idle_timeout < 0:
            raise ValueError("upscale_delay, downscale_delay and idle_timeout must be >= 0")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")


@dataclass(frozen=True)
class AutoscalingState:
    desired: int
    pending_since: float | None = None  # when the current up/down proposal first appeared
    pending_direction: int = 0  # +1, -1, 0
    last_request_at: float | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    state: AutoscalingState
    reason: str  # human text, for events and `strato endpoint describe`
    inputs: dict[str, float | int | None]  # everything the decision used (recorded by the caller)


def _ceil(x: float) -> int:
    return math.ceil(x - _EPS)


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


def decide(
    config: AutoscalingConfig,
    state: AutoscalingState,
    *,
    now: float,
    in_flight: float,
    running: int,
    queued: int = 0,
    last_request_at: float | None = None,
) -> Decision:
    """One autoscaling step; see the module docstring for the rules. Pure: the same inputs, the same output."""
    if in_flight < 0 or queued < 0 or running < 0:
        raise ValueError("in_flight, queued and running must be >= 0")
    load = in_flight + queued
    seen = [t for t in (state.last_request_at, last_request_at, now if load > 0 else None) if t is not None]
    last = max(seen) if seen else now  # no request ever: the idle clock starts now
    idle_for = now - last
    needed = max(1, _ceil(load / config.target_in_flight)) if load > 0 else 0
    raw = max(config.min_replicas, min(config.max_replicas, needed))
    current = state.desired
    inputs: dict[str, float | int | None] = {
        "now": now,
        "in_flight": in_flight,
        "queued": queued,
        "running": running,
        "desired": current,
        "needed": needed,
        "raw_target": raw,
        "min_replicas": config.min_replicas,
        "max_replicas": config.max_replicas,
        "target_in_flight": config.target_in_flight,
        "last_request_at": last,
        "idle_for": idle_for,
        "proposed": current,
        "pending_for": None,
    }
    load_text = f"in-flight {in_flight:.1f}" + (f" + {queued} queued" if queued else "")
    load_text += f" over {_replicas(running)}"
    settled = AutoscalingState(desired=current, last_request_at=last)  # no proposal pending

    def done(desired: int, new_state: AutoscalingState, reason: str, proposed: int | None = None) -> Decision:
        inputs["proposed"] = desired if proposed is None else proposed
        return Decision(desired=desired, state=new_state, reason=reason, inputs=inputs)

    if current == 0 and load > 0:
        new = max(1, raw)
        return done(new, replace(settled, desired=new), f"scale from zero: {load_text} waiting: 0 -> {new}")

    floor_note = ""
    if raw == 0:  # min_replicas == 0 and no load
        if current == 0:
            return done(0, settled, f"scaled to zero: no request for {idle_for:.1f}s")
        if idle_for >= config.idle_timeout:
            reason = f"no request for {idle_for:.1f}s >= idle_timeout {config.idle_timeout:g}s: {current} -> 0"
            return done(0, replace(settled, desired=0), reason)
        raw = 1  # not idle long enough: keep one replica warm
        floor_note = f" (keeping 1 until no request for {config.idle_timeout:g}s; last {idle_for:.1f}s ago)"

    target_text = f"target {config.target_in_flight:.1f} each"
    if raw == current:
        return done(current, settled, f"steady: {load_text} at {target_text} needs {current}{floor_note}")

    direction = 1 if raw > current else -1
    gap = abs(raw - current)
    step = max(1, _ceil(config.smoothing * gap))
    proposed = current + direction * step
    same = state.pending_direction == direction and state.pending_since is not None
    since = state.pending_since if same and state.pending_since is not None else now
    waited = now - since
    inputs["pending_for"] = waited
    delay = config.upscale_delay if direction > 0 else config.downscale_delay
    if waited < delay:
        word = "up" if direction > 0 else "down"
        reason = f"holding: scale-{word} {current} -> {proposed} pending for {waited:.1f}s of {delay:g}s ({load_text})"
        pending = replace(settled, pending_since=since, pending_direction=direction)
        return done(current, pending, reason + floor_note, proposed)
    reason = f"{load_text} {'>' if direction > 0 else '<'} {target_text}: {current} -> {proposed}"
    if proposed != raw:
        reason += f" (smoothing {config.smoothing:g}: step {step} of {gap} toward {raw})"
    return done(proposed, replace(settled, desired=proposed), reason + floor_note)
