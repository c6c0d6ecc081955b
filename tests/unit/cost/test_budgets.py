"""Budgets against the ledger: scope by kind, name glob and labels; monthly periods; alerts once per
threshold; projection at the current rate; a spent hard budget stops jobs and holds endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato.cost.budgets import BudgetService, matches
from strato.cost.ledger import CostRecord, LedgerStore
from strato.errors import InvalidArgument
from strato.specs.budget import Budget
from strato.store.metadata import MetadataStore

MID_MONTH = datetime(2026, 3, 16, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = MID_MONTH

    def __call__(self) -> float:
        return self.now


def spend(ledger: LedgerStore, uid: str, name: str, cost: float, at: float, labels: dict[str, str]) -> None:
    ledger.upsert([CostRecord(uid, "TrainingJob", name, f"attempt-{at}", at - 60, at, 60, 1, "m5.large", "aws",
                              "us-east-1", "on_demand", 1.0, cost, None, labels)])  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> tuple[MetadataStore, BudgetService, Clock]:
    clock = Clock()
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", clock=clock)
    return store, BudgetService(store, lambda: None, clock=clock), clock  # type: ignore[arg-type,return-value]


def test_scope_matching() -> None:
    budget = Budget(name="b", scope={"kind": "TrainingJob", "name": "resnet-*", "labels": {"team": "v"}}, amount=1)
    assert matches(budget, "TrainingJob", "resnet-50", {"team": "v", "x": "y"})
    assert not matches(budget, "TrainingJob", "bert", {"team": "v"})
    assert not matches(budget, "Endpoint", "resnet-50", {"team": "v"})
    assert not matches(budget, "TrainingJob", "resnet-50", {"team": "w"})


def test_soft_budget_alerts_once_per_threshold_in_its_month(world: tuple[MetadataStore, BudgetService, Clock]) -> None:
    store, budgets, clock = world
    store.create("TrainingJob", "j", {"kind": "TrainingJob", "name": "j", "labels": {"team": "v"}}, state="Running",
                 reason="x", message="")  # fmt: skip
    uid = store.get("TrainingJob", "j").uid
    budgets.apply(Budget(name="team", scope={"labels": {"team": "v"}}, amount=10, alert_at=[0.5, 1.0]))
    spend(budgets.ledger, uid, "j", 4.0, datetime(2026, 2, 20, tzinfo=UTC).timestamp(), {"team": "v"})  # last month
    spend(budgets.ledger, uid, "j", 6.0, MID_MONTH - 3600, {"team": "v"})
    budgets.evaluate()
    record = store.get("Budget", "team")
    assert record.state == "Alerting" and record.status["spent"] == pytest.approx(6.0)
    assert [a["threshold"] for a in record.status["alerts"]] == [0.5]
    assert record.status["projected"] > 6.0  # the rate so far, carried to the end of March
    budgets.evaluate()  # no new alert for the same threshold
    assert [e.reason for e in store.events(record.uid)].count("BudgetAlert") == 1
    spend(budgets.ledger, uid, "j", 5.0, MID_MONTH - 60, {"team": "v"})
    budgets.evaluate()
    record = store.get("Budget", "team")
    assert record.state == "Exceeded" and "held" not in record.status  # soft: nothing is stopped
    assert store.get("TrainingJob", "j").desired == {}
    clock.now = datetime(2026, 4, 2, tzinfo=UTC).timestamp()  # a new month starts from zero
    budgets.evaluate()
    record = store.get("Budget", "team")
    assert record.status["spent"] == 0 and record.status["alerts"] == [] and record.state == "Active"


def test_spent_hard_budget_stops_jobs_and_holds_endpoints(world: tuple[MetadataStore, BudgetService, Clock]) -> None:
    store, budgets, _ = world
    for kind, name in (("TrainingJob", "a"), ("Endpoint", "e")):
        store.create(kind, name, {"kind": kind, "name": name, "labels": {"team": "v"}}, state="Running",
                     reason="x", message="")  # fmt: skip
    budgets.apply(Budget(name="cap", scope={"labels": {"team": "v"}}, amount=1, mode="hard", period="total"))
    spend(budgets.ledger, store.get("TrainingJob", "a").uid, "a", 2.0, MID_MONTH - 60, {"team": "v"})
    budgets.evaluate()
    assert store.get("TrainingJob", "a").desired["stop"] is True
    assert store.get("Endpoint", "e").desired["budget_hold"] is True
    assert sorted(store.get("Budget", "cap").status["held"]) == ["Endpoint/e", "TrainingJob/a"]


def test_a_budget_that_already_ended_is_refused(world: tuple[MetadataStore, BudgetService, Clock]) -> None:
    _, budgets, _ = world
    with pytest.raises(InvalidArgument, match="ends 2026-03-01, which is in the past"):
        budgets.apply(Budget(name="old", scope={"kind": "Endpoint"}, amount=5, ends="2026-03-01"))


def test_bad_budget_specs_name_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="empty scope would cap everything"):
        Budget(name="x", scope={}, amount=5)
    with pytest.raises(ValidationError, match="amount"):
        Budget(name="x", scope={"kind": "Endpoint"}, amount=-1)
