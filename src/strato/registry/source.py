"""Which model a run holds, to register it: a model logged in the run (MLflow 3's LoggedModel, from
``mlflow.<flavor>.log_model``, or the job's model directory logged when the job ended), else an MLflow 2
style model among the run's artifacts (a top-level directory with an ``MLmodel`` file, ``model/`` first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strato.errors import InvalidArgument

MODEL_DIR = "model"  # the usual run artifact path of a model directory
MAX_DIRS = 20  # top-level run artifact directories looked into for an MLmodel


@dataclass(frozen=True)
class ModelSource:
    uri: str  # what MLflow registers: models:/<model_id> or the artifact location of a model directory
    run_id: str
    model_id: str | None = None
    artifact_location: str = ""  # where its files are (for reading MLmodel)


def no_model_message(run_id: str) -> str:
    return (
        f"run {run_id} has no logged model; log one with mlflow.<flavor>.log_model (e.g. mlflow.sklearn.log_model) "
        "or write the model directory (an MLflow model with its MLmodel file, e.g. mlflow.sklearn.save_model "
        "into $SM_MODEL_DIR)"
    )


def logged_model_source(client: Any, run: Any) -> ModelSource | None:
    """The model logged in ``run``: the one logged at the latest step (then the newest), as
    ``mlflow.register_model`` picks it; None when the run logged none."""
    run_id = run.info.run_id
    models = [
        m
        for m in client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        if str(getattr(m, "status", "")) != "FAILED"
    ]
    if not models:
        return None
    outputs = getattr(run, "outputs", None)
    steps = {o.model_id: o.step for o in (outputs.model_outputs if outputs else [])}
    chosen = max(models, key=lambda m: (steps.get(m.model_id, -1), m.creation_timestamp or 0))
    return ModelSource(
        uri=f"models:/{chosen.model_id}",
        run_id=run_id,
        model_id=chosen.model_id,
        artifact_location=chosen.artifact_location,
    )


def directory_source(client: Any, run: Any) -> ModelSource | None:
    """A top-level artifact directory of the run holding an ``MLmodel`` (``model/`` first), or None."""
    run_id = run.info.run_id
    dirs = sorted((f.path for f in client.list_artifacts(run_id) if f.is_dir), key=lambda p: (p != MODEL_DIR, p))
    for path in dirs[:MAX_DIRS]:
        if f"{path}/MLmodel" in {f.path for f in client.list_artifacts(run_id, path)}:
            location = f"{run.info.artifact_uri.rstrip('/')}/{path}"
            return ModelSource(uri=location, run_id=run_id, artifact_location=location)
    return None


def find_source(client: Any, run: Any) -> ModelSource:
    found = logged_model_source(client, run) or directory_source(client, run)
    if found is None:
        raise InvalidArgument(no_model_message(run.info.run_id))
    return found
