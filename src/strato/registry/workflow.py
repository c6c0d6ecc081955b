"""The approval workflow (SageMaker's ModelApprovalStatus): approve and reject with who and why, the
model's ``ApprovalPolicy`` checked first (gates, model card, signature, number of approvers), and the
policy's ``on_approval`` actions run once a version is finally Approved."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import yaml

from strato.errors import Conflict, InvalidArgument
from strato.registry.approvals import Action, ApprovalEvent, ApprovalStatus, Decision, summarize
from strato.registry.cards import CardStore
from strato.registry.catalog import APPROVALS_TAG, STATUS_TAG, Catalog, RegistryContext
from strato.registry.deploy import OnApproval
from strato.registry.gates import Baseline, aliases_needed, evaluate
from strato.registry.mlflow_access import is_mlflow_error
from strato.specs.approval_policy import ApprovalPolicy

log = logging.getLogger("strato.registry")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _who(event: ApprovalEvent | None) -> str:
    if event is None:
        return ""
    why = f": {event.reason}" if event.reason else ""
    return f" (by {event.actor} at {_when(event.at)}{why})"


def _require_text(value: str, what: str, hint: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidArgument(f"{what} is required: {hint}")
    return text


class Workflow:
    def __init__(self, ctx: RegistryContext, catalog: Catalog, cards: CardStore, on_approval: OnApproval):
        self.ctx = ctx
        self.catalog = catalog
        self.cards = cards
        self.on_approval = on_approval

    # Approve ----------------------------------------------------------------------------------------
    def approve(self, name: str, ref: str, actor: str, reason: str) -> dict[str, Any]:
        actor = _require_text(actor, "who approves", "give the approver (--by)")
        reason = _require_text(reason, "a reason", "say why the version is approved (--reason)")
        mv = self.catalog.version(name, ref)
        version = str(mv.version)
        policy = self.ctx.policies.find(name)
        required = policy.require.approvals if policy else 1
        label = f"model {name!r} version {version}"

        def check(events: list[ApprovalEvent]) -> Decision:
            state = summarize(events)
            if state.status is ApprovalStatus.APPROVED:
                raise Conflict(f"{label} is already Approved{_who(state.decided)}; nothing to do")
            if state.status is ApprovalStatus.REJECTED:
                raise Conflict(
                    f"{label} was Rejected{_who(state.decided)}; a rejected version cannot be approved: "
                    "register a new version"
                )
            if actor in state.approvers:
                raise Conflict(
                    f"{actor} already approved {label} ({len(state.approvers)} of {required} approvals); "
                    "the next approval must come from someone else"
                )
            count = len(state.approvers) + 1
            status = ApprovalStatus.APPROVED if count >= required else ApprovalStatus.PENDING
            return Action.APPROVED, status, {"approvals": count, "required": required, "checks": checks}

        checks: list[dict[str, Any]] = []
        check(self.ctx.log.events(name, version))  # refuse early, before the policy's checks
        checks = self.policy_checks(policy, mv)
        failed = [c["message"] for c in checks if not c["passed"]]
        if failed:
            self.ctx.log.append(name, version, Action.BLOCKED, actor, reason, {"checks": checks})
            raise Conflict(f"cannot approve {label}: " + "; ".join(failed), details={"checks": checks})
        event = self.ctx.log.decide(name, version, actor, reason, check)
        final = event.status == ApprovalStatus.APPROVED
        count = int(event.details["approvals"])
        notes = self._mirror(name, version, ApprovalStatus(event.status), f"{count}/{required}")
        actions = self.on_approval.run(name, version, actor, policy) if final and policy else []
        message = (
            f"{label} is Approved ({count} of {required} approvals)"
            if final
            else f"{label}: {count} of {required} approvals; still {ApprovalStatus.PENDING}"
        )
        view = self.catalog.version_view(self.catalog.version(name, version), required=required)
        return {**view, "message": message, "checks": checks, "actions": actions, "notes": notes}

    def reject(self, name: str, ref: str, actor: str, reason: str) -> dict[str, Any]:
        actor = _require_text(actor, "who rejects", "give the reviewer (--by)")
        reason = _require_text(reason, "a reason", "say why the version is rejected (--reason)")
        mv = self.catalog.version(name, ref)
        version = str(mv.version)
        label = f"model {name!r} version {version}"

        def check(events: list[ApprovalEvent]) -> Decision:
            state = summarize(events)
            if state.status is ApprovalStatus.REJECTED:
                raise Conflict(f"{label} is already Rejected{_who(state.decided)}; nothing to do")
            return Action.REJECTED, ApprovalStatus.REJECTED, {"previous": str(state.status)}

        self.ctx.log.decide(name, version, actor, reason, check)
        notes = self._mirror(name, version, ApprovalStatus.REJECTED, None)
        view = self.catalog.version_view(self.catalog.version(name, version))
        return {**view, "message": f"{label} is Rejected", "checks": [], "actions": [], "notes": notes}

    def history(self, name: str, ref: str) -> list[dict[str, Any]]:
        version = str(self.catalog.version(name, ref).version)
        return [event.to_dict() for event in self.ctx.log.events(name, version)]

    # Policy checks ----------------------------------------------------------------------------------
    def policy_checks(self, policy: ApprovalPolicy | None, mv: Any) -> list[dict[str, Any]]:
        """Every check of the policy on this version, passed or not (the gates, then the requirements)."""
        if policy is None:
            return []
        name, version = mv.name, str(mv.version)
        checks: list[dict[str, Any]] = []
        gates = policy.parsed_gates()
        if gates:
            metrics = self._metrics(mv.run_id) if mv.run_id else {}
            baselines = {alias: self._baseline(name, alias) for alias in aliases_needed(gates)}
            run_id = mv.run_id or "(none: the version has no run)"
            checks += [{"check": "gate", **r.to_dict()} for r in evaluate(gates, run_id, metrics, baselines)]
        if policy.require.model_card:
            has = self.cards.exists(name, version)
            message = (
                "model card: set"
                if has
                else f"model card required: version {version} has none; set one with "
                f"`strato models card set {name} {version} -f card.yaml`"
            )
            checks.append({"check": "model_card", "passed": has, "message": message})
        if policy.require.signature:
            has = self._has_signature(name, version)
            message = (
                "signature: present"
                if has
                else "signature required: the model has none; log it with one, e.g. "
                "mlflow.sklearn.log_model(model, name='model', input_example=X[:5]) or signature=infer_signature(X, y)"
            )
            checks.append({"check": "signature", "passed": has, "message": message})
        return checks

    def _metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.ctx.mlflow.client().get_run(run_id).data.metrics)

    def _baseline(self, name: str, alias: str) -> Baseline | None:
        try:
            mv = self.ctx.mlflow.client().get_model_version_by_alias(name, alias)
        except Exception as exc:
            if is_mlflow_error(exc):
                return None
            raise
        metrics = self._metrics(mv.run_id) if mv.run_id else {}
        return Baseline(alias=alias, version=str(mv.version), run_id=mv.run_id or "", metrics=metrics)

    def _has_signature(self, name: str, version: str) -> bool:
        location = self.ctx.mlflow.client().get_model_version_download_uri(name, version)
        text = self.ctx.mlflow.download_text(location.rstrip("/") + "/MLmodel")
        if not text:
            return False
        data = yaml.safe_load(text) or {}
        return bool(isinstance(data, dict) and data.get("signature"))

    # MLflow mirror ------------------------------------------------------------------------------------
    def _mirror(self, name: str, version: str, status: ApprovalStatus, approvals: str | None) -> list[str]:
        """Show the status in MLflow's UI (a version tag). Strato's log is the truth: a failure here is
        reported, not raised (``get`` mirrors it again)."""
        try:
            client = self.ctx.mlflow.client()
            client.set_model_version_tag(name, version, STATUS_TAG, str(status))
            if approvals is not None:
                client.set_model_version_tag(name, version, APPROVALS_TAG, approvals)
        except Exception as exc:
            log.warning("could not mirror the approval status of %s/%s to MLflow: %s", name, version, exc)
            return [f"the status tag was not written to MLflow ({exc}); it is written again on the next get"]
        return []
