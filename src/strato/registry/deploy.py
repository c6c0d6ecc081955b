"""What a policy's ``on_approval`` does once a version is finally Approved: point an alias at it, and
ask for its deployment (the registered deploy hooks, or a ``deploy_requested`` event for the serving
feature when none is registered). Each action is recorded in the approval log; one that fails is
reported in the result and never undoes the approval."""

from __future__ import annotations

import logging
from collections.abc import Callable

from strato._registry import Registry
from strato.errors import StratoError
from strato.registry.approvals import Action, ApprovalLog
from strato.registry.hooks import DeployHook, DeployRequest
from strato.specs.approval_policy import ApprovalPolicy

log = logging.getLogger("strato.registry")

# set_alias(model, alias, version, actor, reason)
SetAlias = Callable[[str, str, str, str, str], object]


def run_hooks(request: DeployRequest, hooks: Registry[DeployHook], log_: ApprovalLog) -> list[str]:
    """Call every registered deploy hook; with none, record ``deploy_requested`` for serving to act on."""
    details = {"endpoint": request.endpoint, "model": request.model, "version": request.version}
    names = list(hooks)
    if not names:
        log_.append(
            request.model, request.version, Action.DEPLOY_REQUESTED, request.actor,
            f"on_approval: deploy to endpoint {request.endpoint}", details,
        )  # fmt: skip
        return [
            f"deploy requested: endpoint {request.endpoint!r} (no deploy hook is registered; the request is "
            "recorded as a deploy_requested approval event for the serving feature)"
        ]
    done = []
    for name in names:
        try:
            said = hooks.get(name)(request)
        except Exception as exc:
            log.warning("deploy hook %s failed for %s/%s: %s", name, request.model, request.version, exc)
            log_.append(
                request.model, request.version, Action.DEPLOY_FAILED, request.actor, str(exc),
                {**details, "hook": name},
            )  # fmt: skip
            done.append(f"deploy hook {name!r} failed: {exc}")
            continue
        log_.append(
            request.model, request.version, Action.DEPLOYED, request.actor, str(said), {**details, "hook": name}
        )
        done.append(f"deploy hook {name!r}: {said}")
    return done


class OnApproval:
    def __init__(self, log_: ApprovalLog, hooks: Registry[DeployHook], set_alias: SetAlias):
        self.log = log_
        self.hooks = hooks
        self.set_alias = set_alias

    def run(self, model: str, version: str, actor: str, policy: ApprovalPolicy) -> list[str]:
        actions: list[str] = []
        then = policy.on_approval
        if then.set_alias:
            try:
                self.set_alias(model, then.set_alias, version, actor, f"on_approval of ApprovalPolicy {model}")
                actions.append(f"alias {then.set_alias!r} now points at version {version}")
            except StratoError as exc:
                actions.append(f"could not set alias {then.set_alias!r}: {exc.message}")
        if then.deploy is not None:
            request = DeployRequest(
                model=model,
                version=version,
                endpoint=then.deploy.endpoint,
                model_uri=f"models:/{model}/{version}",
                actor=actor,
            )
            actions += run_hooks(request, self.hooks, self.log)
        return actions
