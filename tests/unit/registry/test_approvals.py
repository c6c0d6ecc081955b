"""The approval log: status from the latest decisive event, approvers counted since the submission,
decisions checked and appended in one transaction, alias history; deploy hooks; policy resources."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato._registry import Registry
from strato.errors import Conflict
from strato.registry.approvals import Action, ApprovalEvent, ApprovalLog, ApprovalStatus, summarize
from strato.registry.deploy import run_hooks
from strato.registry.hooks import DeployHook, DeployRequest
from strato.registry.policies import PolicyService
from strato.specs.approval_policy import ApprovalPolicy
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import approval_events


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    s = MetadataStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def event(action: Action, status: ApprovalStatus, actor: str = "a") -> ApprovalEvent:
    return ApprovalEvent(0, "m", "1", str(action), str(status), actor, "", {}, 0.0)


def test_summarize() -> None:
    P, A, R = ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED
    assert summarize([]).status is P
    partial = summarize([event(Action.SUBMITTED, P), event(Action.APPROVED, P, "ann"), event(Action.ALIAS_SET, P)])
    assert (partial.status, partial.approvers) == (P, ["ann"])
    done = summarize([event(Action.SUBMITTED, P), event(Action.APPROVED, P, "ann"), event(Action.APPROVED, A, "bob")])
    assert (done.status, done.approvers) == (A, ["ann", "bob"])
    assert done.decided is not None and done.decided.actor == "bob"
    # Non-decisive events never change the status; a new submission (a reused number) starts over.
    assert summarize([event(Action.REJECTED, R), event(Action.DEPLOY_REQUESTED, A)]).status is R
    again = summarize([event(Action.APPROVED, A, "ann"), event(Action.SUBMITTED, P)])
    assert (again.status, again.approvers) == (P, [])


def test_log_appends_and_decides(store: MetadataStore) -> None:
    log = ApprovalLog(store)
    log.append("m", "1", Action.SUBMITTED, "ci", "registered", status=ApprovalStatus.PENDING)
    log.append("m", "1", Action.ALIAS_SET, "ci", "", {"alias": "champion"})
    assert log.events("m", "1")[-1].status == "PendingManualApproval"  # the current status, by default

    def refuse(events: list[ApprovalEvent]) -> tuple[Action, ApprovalStatus, dict[str, object]]:
        raise Conflict(f"no ({len(events)} events)")

    with pytest.raises(Conflict, match=r"no \(2 events\)"):
        log.decide("m", "1", "ann", "ok", refuse)
    decided = log.decide("m", "1", "ann", "ok", lambda events: (Action.APPROVED, ApprovalStatus.APPROVED, {"n": 1}))
    assert (decided.action, decided.status, decided.actor, decided.details) == ("approved", "Approved", "ann", {"n": 1})
    assert log.status("m", "1").status is ApprovalStatus.APPROVED
    assert [e.action for e in log.events("m")] == ["submitted", "alias_set", "approved"]
    assert set(log.by_version("m")) == {"1"}


def test_alias_history(store: MetadataStore) -> None:
    log = ApprovalLog(store)
    assert log.last_alias_target("m", "champion") is None
    log.append("m", "1", Action.ALIAS_SET, "a", "", {"alias": "champion"})
    log.append("m", "2", Action.ALIAS_SET, "a", "", {"alias": "champion"})
    log.append("m", "1", Action.ALIAS_SET, "a", "", {"alias": "challenger"})
    found = log.last_alias_target("m", "champion")
    assert found is not None and found.version == "2"
    log.append("m", "2", Action.ALIAS_DELETED, "a", "", {"alias": "champion"})
    assert log.last_alias_target("m", "champion") is None


def test_deploy_without_hooks_records_a_request(store: MetadataStore) -> None:
    log = ApprovalLog(store)
    request = DeployRequest("m", "3", "prod", "models:/m/3", "ann")
    said = run_hooks(request, Registry("deploy hook"), log)
    assert "no deploy hook is registered" in said[0] and "deploy_requested" in said[0]
    (recorded,) = log.events("m", "3")
    assert (recorded.action, recorded.actor) == ("deploy_requested", "ann")
    assert recorded.details == {"endpoint": "prod", "model": "m", "version": "3"}


def test_deploy_hooks_are_called_and_failures_reported(store: MetadataStore) -> None:
    log = ApprovalLog(store)
    hooks: Registry[DeployHook] = Registry("deploy hook")
    seen: list[DeployRequest] = []

    def serving(request: DeployRequest) -> str:
        seen.append(request)
        return f"endpoint {request.endpoint} now serves {request.model_uri}"

    def broken(request: DeployRequest) -> str:
        raise RuntimeError("cluster unreachable")

    hooks.add("serving", serving)
    hooks.add("broken", broken)
    said = run_hooks(DeployRequest("m", "3", "prod", "models:/m/3", "ann"), hooks, log)
    assert said == [
        "deploy hook 'broken' failed: cluster unreachable",
        "deploy hook 'serving': endpoint prod now serves models:/m/3",
    ]
    assert [e.action for e in log.events("m", "3")] == ["deploy_failed", "deployed"]
    assert seen[0].actor == "ann"


def test_policy_resource(store: MetadataStore) -> None:
    policies = PolicyService(store)
    assert policies.find("iris") is None
    spec = ApprovalPolicy(name="iris", gates=["accuracy >= 0.9"])
    record, created = policies.apply(spec)
    assert created and record.state == "Active" and not record.active  # no reconciler drives it
    assert policies.apply(spec) == (record, False)
    changed, created = policies.apply(spec.model_copy(update={"gates": ["accuracy >= 0.95"]}))
    assert not created and changed.uid == record.uid and changed.status["generation"] == 2
    found = policies.find("iris")
    assert found is not None and found.gates == ["accuracy >= 0.95"]
    api = policies.to_api(changed)
    assert api["kind"] == "ApprovalPolicy" and api["status"]["state"] == "Active"
    assert [r.name for r in policies.list()] == ["iris"]
    policies.delete("iris")
    assert policies.find("iris") is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    url = (
        f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    s = MetadataStore(url)
    with s.writing() as conn:  # PostgreSQL: one database per session, start empty
        conn.execute(approval_events.delete())
    yield s
    s.close()


def test_racing_approvers_are_counted_one_after_the_other(any_store: MetadataStore) -> None:
    """Six approvers at once on a version that needs two: exactly two approvals, the rest refused."""
    log = ApprovalLog(any_store)
    log.append("m", "1", Action.SUBMITTED, "ci", "", status=ApprovalStatus.PENDING)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def approve(actor: str) -> None:
        def check(events: list[ApprovalEvent]) -> tuple[Action, ApprovalStatus, dict[str, object]]:
            state = summarize(events)
            if state.status is ApprovalStatus.APPROVED:
                raise Conflict("already Approved")
            count = len(state.approvers) + 1
            return Action.APPROVED, ApprovalStatus.APPROVED if count >= 2 else ApprovalStatus.PENDING, {}

        start.wait()
        try:
            log.decide("m", "1", actor, "", check)
            outcomes.append("approved")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=approve, args=(f"user{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["approved"] * 2 + ["refused"] * 4
    final = log.status("m", "1")
    assert final.status is ApprovalStatus.APPROVED and len(final.approvers) == 2


def test_registry_without_tracking_says_so(store: MetadataStore) -> None:
    from strato.errors import Unavailable
    from strato.registry.service import RegistryService

    registry = RegistryService(store, None)
    for call in (registry.list_models, lambda: registry.register("m", run_id="r"), lambda: registry.get_model("m")):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.message == (
            "experiment tracking is off: the model registry needs the managed MLflow server (setting tracking: true)"
        )
    assert registry.policies.find("m") is None  # policies are plain resources: no MLflow needed
