"""Turns a stored training job into the task the compute backend runs (one per worker of a
distributed job): the runner module, with the job and the worker's place in its gang described in
``STRATO_TASK``, and secrets kept apart so the backend never writes them down."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from strato.compute.base import TaskResources, TaskSpec
from strato.jobs.environment import Cluster
from strato.specs.training_job import TrainingJob
from strato.store.secrets import SecretBox


def artifact_prefix(name: str, uid: str) -> str:
    return f"jobs/{name}/{uid}"


def build_task(
    *,
    name: str,
    uid: str,
    spec: TrainingJob,
    attempt: int,
    artifact_url: str,
    artifact_options: dict[str, Any],
    secrets: SecretBox,
    log_max_bytes: int | None = None,
    extra_env: dict[str, str] | None = None,
    extra_secret_env: dict[str, str] | None = None,
    cluster: Cluster | None = None,
    lake_url: str | None = None,
) -> TaskSpec:
    cluster = cluster or Cluster()
    payload = {
        "job": name,
        "uid": uid,
        "attempt": attempt,
        "prefix": artifact_prefix(name, uid),
        "code": spec.code,
        "inputs": spec.inputs,
        "command": spec.argv,
        "entrypoint": spec.entrypoint,
        "hyperparameters": spec.hyperparameters,
        "cpus": spec.resources.cpus,
        "gpus": spec.resources.gpus,
        "cluster": cluster.to_payload(),
        "warm_pool": spec.warm_pool.model_dump() if spec.warm_pool else None,
    }
    bin_dir = str(Path(sys.executable).parent)
    env = {
        # The runner and ``python`` in user commands resolve to the platform's interpreter first.
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "STRATO_TASK": json.dumps(payload),
        "STRATO_ARTIFACT_URL": artifact_url,
        "STRATO_ATTEMPT": str(attempt),
        **({"STRATO_LAKE_URL": lake_url} if lake_url else {}),
        **(extra_env or {}),
        **spec.environment,
    }
    for passed in ("PYTHONPATH", "STRATO_WARM_DIR"):  # the platform's module path; where warm pools live
        if os.environ.get(passed):
            env[passed] = os.environ[passed]
    secret_env = {**(extra_secret_env or {}), **{key: secrets.decrypt(value) for key, value in spec.secrets.items()}}
    if artifact_options:
        secret_env["STRATO_ARTIFACT_OPTIONS"] = json.dumps(artifact_options)
    return TaskSpec(
        command=[sys.executable, "-m", "strato.jobs.runner"],
        env=env,
        resources=TaskResources(cpus=spec.resources.cpus, memory=spec.resources.memory, gpus=spec.resources.gpus),
        secret_env=secret_env,
        labels={
            "strato.kind": "TrainingJob",
            "strato.name": name,
            "strato.uid": uid,
            "strato.attempt": str(attempt),
            "strato.rank": str(cluster.rank),
        },
        log_max_bytes=log_max_bytes,
    )
