"""The spot part of a training job: how it may be interrupted and how it recovers.

spot:
  enabled: true
  cloud: aws                  # notice defaults: aws 120s, gcp 30s, azure 30s
  notice: 30s
  max_wait: 2h                # total wall time, waits and restarts included (SageMaker MaxWaitTime)
  interruptions: {rate_per_hour: 5, seed: 7}     # or advisor_bucket: ">20%", or at: [40s, 2m]
  recovery: {strategy: restart_after_delay, delay: 30s, max_interruptions: 10}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from strato.specs.base import Duration, StrictModel

# AWS Spot Advisor's "frequency of interruption" buckets (share of instances interrupted in a month).
ADVISOR_BUCKETS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")


class InterruptionModel(StrictModel):
    """Where simulated interruptions come from. ``at`` is exact (times since the job first started);
    ``rate_per_hour`` and ``advisor_bucket`` draw from a seeded Poisson process."""

    rate_per_hour: float | None = Field(None, gt=0)
    advisor_bucket: Literal["<5%", "5-10%", "10-15%", "15-20%", ">20%"] | None = None
    at: list[Duration] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> InterruptionModel:
        given = [bool(self.rate_per_hour), bool(self.advisor_bucket), bool(self.at)]
        if sum(given) > 1:
            raise ValueError("give one of rate_per_hour, advisor_bucket or at")
        if self.at != sorted(self.at):
            raise ValueError("at: times must be in increasing order")
        return self


class RecoveryPolicy(StrictModel):
    """What happens after an interruption: a named strategy (``restart``, ``restart_after_delay``,
    ``give_up_after``), checked against the registered ones when the job is applied."""

    strategy: str = "restart"
    delay: Duration | None = None
    max_interruptions: int | None = Field(None, ge=0)


class SpotPolicy(StrictModel):
    enabled: bool = True
    cloud: Literal["aws", "gcp", "azure"] = "aws"
    notice: Duration | None = Field(None, description="SIGTERM-to-kill time; default the cloud's")
    max_wait: Duration | None = None
    interruptions: InterruptionModel = Field(default_factory=InterruptionModel)
    recovery: RecoveryPolicy = Field(default_factory=RecoveryPolicy)
