"""Deploy hooks: what runs when an approved version's policy says ``on_approval: {deploy: {endpoint}}``.

The serving feature registers a hook here (``DEPLOY_HOOKS.add("serving", hook)``). While none is
registered, the registry records a ``deploy_requested`` approval event instead, for serving to act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strato._registry import Registry


@dataclass(frozen=True)
class DeployRequest:
    model: str
    version: str
    endpoint: str
    model_uri: str  # models:/<model>/<version>
    actor: str  # who gave the final approval


# A hook deploys (or schedules the deployment of) the version and returns one line saying what it did.
DeployHook = Callable[[DeployRequest], str]

DEPLOY_HOOKS: Registry[DeployHook] = Registry("deploy hook")
