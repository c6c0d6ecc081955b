"""Budgets: spending caps evaluated against the cost ledger.

At admission (before a job, batch transform or endpoint is stored) a hard budget refuses a run whose
projected cost (``max_runtime`` x instances x hourly price; an endpoint's minimum replicas for a day)
would take its spend past the amount, with the numbers. After each ledger pass every budget is evaluated:
spend in its period, the projection to the period's end at the current rate, alerts at its thresholds
(events on the budget), and for a hard budget that is exceeded, its running jobs and batch transforms are
stopped and its endpoints are held at their current size.
"""

from __future__ import annotations

import builtins
import fnmatch
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strato.cost.ledger import LedgerStore
from strato.cost.pricing import Pricer
from strato.errors import InvalidArgument, NotFound, ResourcesImpossible
from strato.specs.base import Resources, ResourceSpec
from strato.specs.budget import SCOPED_KINDS, Budget
from strato.store.metadata import MetadataStore, ResourceRecord, Transition

KIND = Budget.KIND
TERMINAL = ("Completed", "Failed", "Stopped")


def matches(budget: Budget, kind: str, name: str, labels: dict[str, str]) -> bool:
    scope = budget.scope
    if scope.kind is not None and scope.kind != kind:
        return False
    if scope.name is not None and not fnmatch.fnmatchcase(name, scope.name):
        return False
    return all(labels.get(k) == v for k, v in scope.labels.items())


def period_start(budget: Budget, now: float) -> float:
    if budget.period == "monthly":
        moment = datetime.fromtimestamp(now, UTC)
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    if budget.starts is not None:
        return datetime(budget.starts.year, budget.starts.month, budget.starts.day, tzinfo=UTC).timestamp()
    return 0.0


def period_end(budget: Budget, now: float) -> float | None:
    if budget.period == "monthly":
        moment = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = moment.replace(year=moment.year + 1, month=1) if moment.month == 12 else moment.replace(
            month=moment.month + 1
        )
        return following.timestamp()
    if budget.ends is not None:
        return datetime(budget.ends.year, budget.ends.month, budget.ends.day, tzinfo=UTC).timestamp()
    return None


class BudgetService:
    def __init__(
        self, store: MetadataStore, pricer: Callable[[], Pricer], *, clock: Callable[[], float] = time.time
    ):
        self.store = store
        self.ledger = LedgerStore(store)
        self.pricer = pricer
        self.clock = clock

    # The generic verbs ---------------------------------------------------------------------------
    def apply(self, spec: Budget) -> tuple[ResourceRecord, bool]:
        try:
            spec.check_not_over(datetime.fromtimestamp(self.clock(), UTC).date())
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        data = spec.model_dump(mode="json")
        try:
            existing = self.store.get(KIND, spec.name)
        except NotFound:
            record = self.store.create(KIND, spec.name, data, state="Active", reason="Created",
                                       message=f"caps {spec.amount:g} USD {spec.period}", status={})  # fmt: skip
            self.evaluate()
            return self.store.get_by_uid(record.uid), True
        if Budget.model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        self.store.replace_spec(existing.uid, data)
        self.evaluate()
        return self.store.get_by_uid(existing.uid), False

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(KIND)

    def delete(self, name: str) -> None:
        self.store.delete(self.get(name).uid)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()

    # Spend ---------------------------------------------------------------------------------------
    def _budgets(self) -> builtins.list[tuple[ResourceRecord, Budget]]:
        return [(r, Budget.model_validate(r.spec)) for r in self.store.list(KIND)]

    def spent(self, budget: Budget, now: float) -> tuple[float, builtins.list[ResourceRecord]]:
        """Spend in the budget's current period and the resources in its scope."""
        scoped = [
            r for r in self.store.list()
            if r.kind in SCOPED_KINDS and matches(budget, r.kind, r.name, r.spec.get("labels") or {})
        ]  # fmt: skip
        since = period_start(budget, now)
        total = 0.0
        uids = {r.uid for r in scoped}
        for row in self.ledger.records(since=since):
            in_scope = row.resource_uid in uids or (
                budget.scope.kind in (None, row.kind) and matches(budget, row.kind, row.name, row.labels)
            )
            if in_scope:
                # a record that began before the period counts for its share inside the period
                inside = (row.ended_at - since) / max(row.ended_at - row.started_at, 1e-9)
                share = 1.0 if row.started_at >= since else inside
                total += row.cost * share
        return total, scoped

    # Admission -----------------------------------------------------------------------------------
    def projected_cost(self, spec: ResourceSpec) -> float | None:
        """What a run would cost if it ran to its limit (None when it has no limit to project from)."""
        data = spec.model_dump(mode="json")
        pricer = self.pricer()
        if spec.KIND == "TrainingJob":
            runtime = data.get("max_runtime")
            spot = bool(data.get("spot") and data["spot"].get("enabled"))
            priced = pricer.price(**_resources(data), spot=spot)
            if runtime is None or priced is None:
                return None
            return priced.hourly * int(data.get("instance_count") or 1) * float(runtime) / 3600
        if spec.KIND == "Endpoint":
            total = 0.0
            for variant in data.get("variants", []):
                priced = pricer.price(**_resources(variant))
                if priced is not None:
                    total += priced.hourly * max(1, int((variant.get("replicas") or {}).get("min", 1))) * 24
            return total  # one day at the minimum size
        return None

    def admit(self, spec: ResourceSpec) -> None:
        """Refuse, with the numbers, a run that would take a hard budget past its amount."""
        if spec.KIND not in SCOPED_KINDS:
            return
        now = self.clock()
        projected: float | None = None
        for _, budget in self._budgets():
            if budget.mode != "hard" or not matches(budget, spec.KIND, spec.name, spec.labels):
                continue
            spent, _ = self.spent(budget, now)
            if spent >= budget.amount:
                raise ResourcesImpossible(
                    f"budget {budget.name!r} is spent: {spent:.2f} of {budget.amount:.2f} USD this {budget.period} "
                    f"period; raise it or wait for the next period"
                )
            if projected is None:
                projected = self.projected_cost(spec)
            if projected is not None and spent + projected > budget.amount:
                raise ResourcesImpossible(
                    f"{spec.KIND} {spec.name!r} could cost {projected:.2f} USD (its limit at the reference price) "
                    f"and budget {budget.name!r} has {budget.amount - spent:.2f} of {budget.amount:.2f} USD left; "
                    "lower max_runtime or resources, or raise the budget"
                )

    # Evaluation after each ledger pass -----------------------------------------------------------
    def evaluate(self) -> None:
        now = self.clock()
        for record, budget in self._budgets():
            spent, scoped = self.spent(budget, now)
            start, end = period_start(budget, now), period_end(budget, now)
            elapsed = max(now - max(start, record.created_at), 1.0)
            rate = spent / elapsed  # USD per second so far this period
            projected = spent + rate * (end - now) if end is not None else None
            share = spent / budget.amount
            status: dict[str, Any] = {
                "spent": round(spent, 6),
                "amount": budget.amount,
                "share": round(share, 4),
                "projected": None if projected is None else round(projected, 4),
                "period_start": start,
                "alerts": [a for a in record.status.get("alerts", []) if a["period_start"] == start],
            }
            transitions = []
            for threshold in budget.alert_at:
                if share >= threshold and all(a["threshold"] != threshold for a in status["alerts"]):
                    status["alerts"].append({"threshold": threshold, "at": now, "period_start": start})
                    message = f"spent {spent:.2f} of {budget.amount:.2f} USD ({share:.0%}) this {budget.period} period"
                    transitions.append(Transition("Alerting" if share < 1 else "Exceeded", "BudgetAlert", message))
            state = "Exceeded" if share >= 1 else "Alerting" if status["alerts"] else "Active"
            if not transitions and state != record.state:
                transitions.append(Transition(state, "Evaluated", f"spent {spent:.2f} of {budget.amount:.2f} USD"))
            if share >= 1 and budget.mode == "hard":
                status["held"] = self._enforce(budget, scoped)
            if status != record.status or transitions:
                self.store.update_status(record.uid, status, *transitions)

    def _enforce(self, budget: Budget, scoped: builtins.list[ResourceRecord]) -> builtins.list[str]:
        """Stop what runs in the scope of an exceeded hard budget; hold endpoints at their size."""
        held = []
        for record in scoped:
            if record.kind in ("TrainingJob", "BatchTransformJob", "TuningJob") and record.state not in TERMINAL:
                if not record.desired.get("stop"):
                    self.store.set_desired(record.uid, stop=True, stop_reason=f"budget {budget.name!r} exceeded")
                held.append(f"{record.kind}/{record.name}")
            elif record.kind == "Endpoint" and not record.desired.get("budget_hold"):
                self.store.set_desired(record.uid, budget_hold=True)
                held.append(f"Endpoint/{record.name}")
        return held


def _resources(data: dict[str, Any]) -> dict[str, Any]:
    resources = Resources.model_validate(data.get("resources") or {})
    return {"cpus": resources.cpus, "memory_bytes": resources.memory, "gpus": resources.gpus}
