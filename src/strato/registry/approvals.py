"""The approval audit log (``approval_events``, append-only) and what a version's status is from it.

Every registration, approval, rejection, refused approval, alias change and deployment request of a
model version is one row: who, when, why, and details (the gates evaluated, the alias, the endpoint).
Rows are never updated or deleted. A version's approval status is the status of its latest *decisive*
event (submitted, approved, rejected); approvals count from its latest submission, so a version number
that MLflow reuses after a delete starts over.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import approval_events


class ApprovalStatus(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class Action(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    BLOCKED = "approval_blocked"  # an approval the policy refused (gates, card, signature)
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"
    DEPLOY_REQUESTED = "deploy_requested"  # for the serving feature to act on (no deploy hook ran)
    DEPLOYED = "deployed"  # a deploy hook ran
    DEPLOY_FAILED = "deploy_failed"
    DELETED = "deleted"


DECISIVE = frozenset({Action.SUBMITTED, Action.APPROVED, Action.REJECTED})


@dataclass(frozen=True)
class ApprovalEvent:
    id: int
    model: str
    version: str
    action: str
    status: str
    actor: str
    reason: str
    details: dict[str, Any]
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionApproval:
    """Where a version stands: its status, who approved it since its submission, the deciding event."""

    status: ApprovalStatus
    approvers: list[str] = field(default_factory=list)
    decided: ApprovalEvent | None = None


def summarize(events: list[ApprovalEvent]) -> VersionApproval:
    """The approval of one version from its events (oldest first). No event: Pending (registered
    before Strato recorded it, e.g. through MLflow directly)."""
    status = ApprovalStatus.PENDING
    approvers: list[str] = []
    decided: ApprovalEvent | None = None
    for event in events:
        if event.action not in DECISIVE:
            continue
        status, decided = ApprovalStatus(event.status), event
        if event.action == Action.SUBMITTED:
            approvers = []
        elif event.action == Action.APPROVED and event.actor not in approvers:
            approvers.append(event.actor)
    return VersionApproval(status, approvers, decided)


def _event(row: sa.Row[Any]) -> ApprovalEvent:
    return ApprovalEvent(
        int(row.id), row.model, row.version, row.action, row.status, row.actor, row.reason, dict(row.details), row.at
    )


# What ``ApprovalLog.decide`` asks of its check: the action, status and details of the event to append.
Decision = tuple[Action, ApprovalStatus, dict[str, Any]]


class ApprovalLog:
    def __init__(self, store: MetadataStore):
        self.store = store

    def events(self, model: str, version: str | None = None) -> list[ApprovalEvent]:
        query = sa.select(approval_events).where(approval_events.c.model == model).order_by(approval_events.c.id)
        if version is not None:
            query = query.where(approval_events.c.version == version)
        with self.store.reading() as conn:
            return [_event(row) for row in conn.execute(query)]

    def by_version(self, model: str) -> dict[str, list[ApprovalEvent]]:
        grouped: dict[str, list[ApprovalEvent]] = {}
        for event in self.events(model):
            grouped.setdefault(event.version, []).append(event)
        return grouped

    def status(self, model: str, version: str) -> VersionApproval:
        return summarize(self.events(model, version))

    def append(
        self,
        model: str,
        version: str,
        action: Action,
        actor: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        status: ApprovalStatus | None = None,
    ) -> ApprovalEvent:
        """Append one event; ``status`` defaults to the version's current status (non-decisive events)."""
        with self.store.writing() as conn:
            self._lock(conn, model, version)
            if status is None:
                status = summarize(self._events(conn, model, version)).status
            return self._insert(conn, model, version, action, status, actor, reason, details or {})

    def decide(
        self, model: str, version: str, actor: str, reason: str, check: Callable[[list[ApprovalEvent]], Decision]
    ) -> ApprovalEvent:
        """Read the version's events, let ``check`` refuse (raise) or decide, and append the decision, in
        one transaction: two approvers racing are counted one after the other."""
        with self.store.writing() as conn:
            self._lock(conn, model, version)
            action, status, details = check(self._events(conn, model, version))
            return self._insert(conn, model, version, action, status, actor, reason, details)

    def last_alias_target(self, model: str, alias: str) -> ApprovalEvent | None:
        """The latest ``alias_set`` of ``alias`` on ``model``, unless a later ``alias_deleted`` removed it."""
        latest: ApprovalEvent | None = None
        for event in self.events(model):
            if event.details.get("alias") != alias:
                continue
            if event.action == Action.ALIAS_SET:
                latest = event
            elif event.action == Action.ALIAS_DELETED:
                latest = None
        return latest

    # Internals ----------------------------------------------------------------------------------
    def _events(self, conn: Connection, model: str, version: str) -> list[ApprovalEvent]:
        query = (
            sa.select(approval_events)
            .where(approval_events.c.model == model, approval_events.c.version == version)
            .order_by(approval_events.c.id)
        )
        return [_event(row) for row in conn.execute(query)]

    def _insert(
        self,
        conn: Connection,
        model: str,
        version: str,
        action: Action,
        status: ApprovalStatus,
        actor: str,
        reason: str,
        details: dict[str, Any],
    ) -> ApprovalEvent:
        values = {
            "model": model,
            "version": version,
            "action": str(action),
            "status": str(status),
            "actor": actor,
            "reason": reason,
            "details": details,
            "at": self.store.clock(),
        }
        key = conn.execute(approval_events.insert().values(**values)).inserted_primary_key
        assert key is not None
        return ApprovalEvent(id=int(key[0]), **values)  # type: ignore[arg-type]

    @staticmethod
    def _lock(conn: Connection, model: str, version: str) -> None:
        """SQLite writers already queue (``BEGIN IMMEDIATE``); PostgreSQL takes a lock per version."""
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(f"{model}/{version}".encode())
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
