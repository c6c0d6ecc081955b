"""Recovery strategies after a spot interruption, registered by name (SkyPilot's recovery strategies)
and chosen in the spec as ``spot.recovery.strategy``. Each is a pure function of the interruptions so
far and the policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strato._registry import Registry
from strato.specs.spot import RecoveryPolicy


@dataclass(frozen=True)
class Decision:
    restart: bool
    delay: float = 0.0
    reason: str = ""


Strategy = Callable[[int, RecoveryPolicy], Decision]
STRATEGIES: Registry[Strategy] = Registry("recovery strategy")


def _within_limit(interruptions: int, policy: RecoveryPolicy) -> Decision | None:
    if policy.max_interruptions is not None and interruptions > policy.max_interruptions:
        return Decision(
            False,
            reason=f"interrupted {interruptions} times, more than max_interruptions "
            f"({policy.max_interruptions}); giving up",
        )
    return None


@STRATEGIES.register("restart")
def restart(interruptions: int, policy: RecoveryPolicy) -> Decision:
    """Start again at once from the last checkpoint (SageMaker managed spot)."""
    return _within_limit(interruptions, policy) or Decision(True, reason="restarting from the last checkpoint")


@STRATEGIES.register("restart_after_delay")
def restart_after_delay(interruptions: int, policy: RecoveryPolicy) -> Decision:
    """Wait ``delay`` before starting again (capacity often comes back after a while)."""
    delay = policy.delay if policy.delay is not None else 60.0
    return _within_limit(interruptions, policy) or Decision(
        True, delay=delay, reason=f"restarting from the last checkpoint after {delay:g}s"
    )


@STRATEGIES.register("give_up_after")
def give_up_after(interruptions: int, policy: RecoveryPolicy) -> Decision:
    """Restart at once, but stop trying after ``max_interruptions`` (default 3)."""
    limit = policy.max_interruptions if policy.max_interruptions is not None else 3
    return restart(interruptions, policy.model_copy(update={"max_interruptions": limit}))
