"""Safe rollout of a variant's new revision (SageMaker's deployment guardrails, KServe's canary): the
traffic share the new replicas get at each stage, and whether their measured error rate or p99 latency
calls for a rollback. Pure functions over an injected ``now``; the reconciler keeps the state.

``canary``: ``canary_percent`` for one ``interval``, then all. ``linear``: ``step_percent`` more every
``interval``. At any time, once the new revision has answered ``min_requests``, an error rate above
``max_error_rate`` or a p99 above ``max_p99`` rolls it back: its replicas stop and the old ones, which
served the rest of the traffic all along, take it all again.
"""

from __future__ import annotations

from dataclasses import dataclass

from strato.specs.endpoint import Rollout


@dataclass
class RolloutState:
    revision: str
    stage: int
    stage_started: float


def shares(policy: Rollout) -> list[float]:
    """The new revision's share of its variant's traffic at each stage, ending at 1.0."""
    if policy.strategy == "canary":
        return [policy.canary_percent / 100, 1.0]
    step = policy.step_percent / 100
    stages = [min(1.0, step * (i + 1)) for i in range(int(1 / step + 0.999))]
    return stages if stages[-1] == 1.0 else [*stages, 1.0]


def share(policy: Rollout, state: RolloutState) -> float:
    stages = shares(policy)
    return stages[min(state.stage, len(stages) - 1)]


def advance(policy: Rollout, state: RolloutState, now: float) -> RolloutState | None:
    """The state after ``now``: the next stage once the interval passed; None when the next stage
    would give the new revision all the traffic (the rollout is done)."""
    if now - state.stage_started < policy.interval:
        return state
    if state.stage + 1 >= len(shares(policy)) - 1:
        return None
    return RolloutState(state.revision, state.stage + 1, now)


def verdict(policy: Rollout, requests: int, errors: int, p99: float | None) -> str | None:
    """Why the new revision must be rolled back, or None."""
    if requests < policy.min_requests:
        return None
    rate = errors / requests
    if rate > policy.max_error_rate:
        return f"error rate {rate:.1%} over {requests} requests > max_error_rate {policy.max_error_rate:.1%}"
    if policy.max_p99 is not None and p99 is not None and p99 > policy.max_p99:
        return f"p99 latency {p99 * 1000:.0f} ms over {requests} requests > max_p99 {policy.max_p99 * 1000:.0f} ms"
    return None
