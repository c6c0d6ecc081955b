"""Runs inside a job's task (``python -m strato.jobs.runner``), on whatever machine the compute backend
chose: fetches the code snapshot and inputs from the artifact store, sets up the script-mode
environment, runs the user's command, and uploads model, outputs and checkpoints when it ends.

It talks to the control plane only through its log: ``[strato] phase X`` lines mark progress and
``[strato] failure-reason "..."`` carries why a job failed. That keeps it backend-agnostic (a Ray
worker's log reaches the control plane the same way as a local process's).

The task description comes in ``STRATO_TASK`` (JSON); artifact store credentials in
``STRATO_ARTIFACT_URL`` / ``STRATO_ARTIFACT_OPTIONS``. Stop requests arrive as SIGTERM to the whole
process group: the user's code gets it, this runner waits for the code to end and still uploads what
the code saved (as SageMaker does in its 120 s window).

In a distributed job every worker runs this runner with its place in the gang (``cluster`` in the task
description). Every worker restores the latest checkpoint before its code starts; only rank 0 syncs
checkpoints and uploads the model and outputs (what DDP scripts save from rank 0), so the workers never
race each other's uploads. Scripts should write checkpoints and the model from rank 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from strato.jobs.checkpoints import CheckpointSync
from strato.jobs.environment import (
    Cluster,
    JobDirs,
    hyperparameter_args,
    script_environment,
    write_config_files,
)
from strato.jobs.warm_pool import WarmRun, script_argv

STORE_SCHEME = "strato://"
SNAPSHOT_PREFIX = "snapshots/"


def say(line: str) -> None:
    sys.stdout.write(f"[strato] {line}\n")
    sys.stdout.flush()


def phase(name: str, detail: str = "") -> None:
    # The time lets the control plane date the transition when it happened, not when it read the line.
    say(f"phase {name} at {time.time():.3f}" + (f": {detail}" if detail else ""))


class InputError(Exception):
    """A problem with the job's code or inputs: reported as the failure reason, no stack trace."""


def _store() -> Any:
    from strato.store.artifacts import open_artifact_store

    options = json.loads(os.environ.get("STRATO_ARTIFACT_OPTIONS") or "{}")
    return open_artifact_store(os.environ["STRATO_ARTIFACT_URL"], options)


def materialize(source: str, dest: Path, store: Any) -> None:
    """Bring a code or input source into ``dest``: a snapshot from the store is extracted; a lake table
    (``lake://NAME@VERSION``) is written as ``NAME.parquet``; any other store path, ``file://``, local path
    or ``s3://`` URI is copied."""
    from strato.store.artifacts import download_uri, extract_snapshot

    if source.startswith("lake://"):  # pinned to a version when the job was submitted
        from strato.lake.tables import LakeTables, parse_uri

        ref = parse_uri(source)
        table = LakeTables(os.environ["STRATO_LAKE_URL"]).read(ref.name, version=ref.version)
        import pyarrow.parquet as pq

        pq.write_table(table, dest / f"{ref.name}.parquet")
        return
    if source.startswith(STORE_SCHEME):
        path = source[len(STORE_SCHEME) :]
        if path.startswith(SNAPSHOT_PREFIX) and path.endswith(".tar.gz"):
            extract_snapshot(store.get_bytes(path), dest)
        else:
            if store.is_file(path):
                store.get_file(path, dest / Path(path).name)
            else:
                store.get_dir(path, dest)
        return
    options = json.loads(os.environ.get("STRATO_ARTIFACT_OPTIONS") or "{}") if source.startswith("s3://") else None
    download_uri(source, dest, options)


def user_command(task: dict[str, Any], dirs: JobDirs) -> list[str]:
    if task.get("entrypoint"):
        module, function = task["entrypoint"].split(":")
        call = (
            "import json, os, sys; sys.path.insert(0, os.getcwd()); "
            f"import {module} as m; m.{function}(**json.loads(os.environ['STRATO_HYPERPARAMETERS']))"
        )
        return [sys.executable, "-c", call]
    return list(task["command"]) + hyperparameter_args(task.get("hyperparameters") or {})


def run_user_code(argv: list[str], cwd: Path, env: dict[str, str], warm: dict[str, Any] | None = None) -> int:
    if warm is not None and script_argv(argv) is not None:
        run = WarmRun(argv, cwd, env, keep_alive=float(warm.get("keep_alive", 120)))
        if run.start():
            say(f"warm pool: the code started in a warm process (pid {run.pid})")
            # The code runs outside our process group: pass a stop on, then outlive it to upload.
            signal.signal(signal.SIGTERM, lambda signum, _: run.signal(signum))
            signal.signal(signal.SIGINT, lambda signum, _: run.signal(signum))
            returncode = run.wait()
            return 128 - returncode if returncode < 0 else returncode
        say("warm pool: none ready on this machine; this job starts cold and starts one for the next")
    # The user's process shares our process group, so a stop's SIGTERM reaches it directly; we only
    # need to outlive it to upload what it saved.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env)
    except FileNotFoundError:
        raise InputError(
            f"command not found: {argv[0]!r} (is it installed, or is the path relative to code?)"
        ) from None
    except PermissionError:
        raise InputError(f"command {argv[0]!r} is not executable") from None
    returncode = process.wait()
    return 128 - returncode if returncode < 0 else returncode


def upload_outputs(dirs: JobDirs, prefix: str, store: Any) -> None:
    for local, name in ((dirs.model, "model"), (dirs.output_data, "output")):
        if local.is_dir() and any(local.iterdir()):
            store.put_dir(local, f"{prefix}/{name}")
            say(f"uploaded {name} to {store.uri(prefix + '/' + name)}")


def package_model_dir(dirs: JobDirs) -> None:
    """Make the model directory an MLflow model in the job's run (unless the script logged one). Best
    effort: the model is already uploaded, so a failure here is reported, never fatal."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id or not (dirs.model.is_dir() and any(dirs.model.iterdir())):
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars in a log are noise
    try:
        from strato.tracking.packaging import package_model

        code = dirs.code if dirs.code.is_dir() else None
        result = package_model(dirs.model, code, run_id=run_id)
    except Exception as exc:
        say(f"could not make the model an MLflow model: {type(exc).__name__}: {exc}")
        return
    say(f"mlflow model: {result.reason}" + (f" ({result.model_uri})" if result.model_uri else ""))


def main() -> int:
    task = json.loads(os.environ["STRATO_TASK"])
    dirs = JobDirs(Path.cwd())
    channels = sorted(task.get("inputs") or {})
    store = _store()
    prefix = task["prefix"]
    cluster = Cluster.from_payload(task.get("cluster"))
    leader = cluster.rank == 0  # the only worker that syncs checkpoints and uploads outputs
    if cluster.size > 1:
        say(f"worker {cluster.rank} of {cluster.size} ({cluster.host}, distribution {cluster.distribution})")
    phase("Starting", "fetching code and inputs")
    control = Path(os.environ.get("STRATO_CONTROL_DIR") or dirs.root / ".strato")
    checkpoints = CheckpointSync(store, prefix, dirs.checkpoints, control)
    try:
        dirs.create(channels)
        control.mkdir(parents=True, exist_ok=True)
        if task.get("code"):
            materialize(task["code"], dirs.code, store)
        for channel in channels:
            materialize(task["inputs"][channel], dirs.channel(channel), store)
        checkpoints.restore()
    except Exception as exc:  # any failure to fetch is the user's input problem, reported in one line
        say("failure-reason " + json.dumps(f"ClientError: {exc}"))
        return 2

    hyperparameters = task.get("hyperparameters") or {}
    argv = user_command(task, dirs)
    write_config_files(dirs, hyperparameters, channels, cluster)
    env = dict(os.environ)
    env.pop("STRATO_TASK", None)
    env.pop("STRATO_ARTIFACT_OPTIONS", None)
    env["STRATO_CONTROL_DIR"] = str(control)
    env.update(
        script_environment(
            dirs,
            job_name=task["job"],
            channels=channels,
            hyperparameters=hyperparameters,
            cpus=float(task.get("cpus", 1)),
            gpus=int(task.get("gpus", 0)),
            user_args=hyperparameter_args(hyperparameters),
            entry=task.get("entrypoint") or " ".join(argv[:2]),
            cluster=cluster,
        )
    )
    if cluster.distribution == "torch":
        # As torchrun does: one intra-op thread per cpu this worker was given, not one per core of the machine.
        env.setdefault("OMP_NUM_THREADS", str(max(1, int(float(task.get("cpus", 1))))))
    phase("Running", " ".join(argv))
    started = time.time()
    if leader:
        checkpoints.start()
    try:
        exit_code = run_user_code(argv, dirs.code, env, task.get("warm_pool"))
    except InputError as exc:
        say("failure-reason " + json.dumps(f"ClientError: {exc}"))
        return 2
    finally:
        if leader:
            checkpoints.finish()  # what the code saved last, even at a stop or a spot notice
    say(f"user code exited with code {exit_code} after {time.time() - started:.1f}s")
    failure_file = dirs.output / "failure"  # SageMaker's convention for a script's own failure reason
    if exit_code != 0 and failure_file.is_file():
        say("failure-reason " + json.dumps(failure_file.read_text(errors="replace").strip()[:1024]))
    phase("Uploading")
    if leader:
        upload_outputs(dirs, prefix, store)
        if exit_code == 0:
            package_model_dir(dirs)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
