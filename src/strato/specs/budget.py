"""The ``Budget`` resource: a spending cap on a job, endpoint, batch transform, tuning job or a label.

kind: Budget
name: team-vision
scope: {labels: {team: vision}}       # or {kind: TrainingJob, name: "resnet-*"} (a glob)
amount: 200                            # USD, priced on the workspace's cost target
period: monthly                        # or total (from `starts`); monthly resets on the 1st (UTC)
mode: hard                             # hard: refuse runs that would exceed it and stop what runs;
                                       # soft: alert only
alert_at: [0.5, 0.8, 1.0]              # shares of the amount that raise an alert (an event)
ends: 2027-01-01                       # optional; a budget that already ended is refused
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from strato.specs.base import ResourceSpec, StrictModel

SCOPED_KINDS = ("TrainingJob", "TuningJob", "BatchTransformJob", "Endpoint")


class BudgetScope(StrictModel):
    kind: Literal["TrainingJob", "TuningJob", "BatchTransformJob", "Endpoint"] | None = None
    name: str | None = Field(None, min_length=1, description="resource name or glob (fnmatch)")
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> BudgetScope:
        if self.kind is None and self.name is None and not self.labels:
            raise ValueError("scope: give a kind, a name (glob) or labels; an empty scope would cap everything")
        return self


class Budget(ResourceSpec):
    KIND: ClassVar[str] = "Budget"
    PLURAL: ClassVar[str] = "budgets"

    kind: str = "Budget"
    scope: BudgetScope
    amount: float = Field(gt=0, description="USD")
    period: Literal["total", "monthly"] = "monthly"
    mode: Literal["hard", "soft"] = "soft"
    alert_at: list[float] = Field(default_factory=lambda: [0.8, 1.0])
    starts: date | None = None
    ends: date | None = None

    @field_validator("alert_at")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 < share <= 10 for share in value):
            raise ValueError("alert_at: give shares of the amount, e.g. [0.5, 0.8, 1.0]")
        return sorted(value)

    @model_validator(mode="after")
    def _dates(self) -> Budget:
        if self.starts and self.ends and self.ends <= self.starts:
            raise ValueError(f"ends ({self.ends}) must be after starts ({self.starts})")
        return self

    def check_not_over(self, today: date | None = None) -> None:
        """A budget whose period has already ended caps nothing: refused at apply."""
        today = today or datetime.now(UTC).date()
        if self.ends is not None and self.ends <= today:
            raise ValueError(f"budget {self.name!r} ends {self.ends}, which is in the past; give a future `ends`")
