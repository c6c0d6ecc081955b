"""The model registry on a real control plane with its managed MLflow server: models logged with the
real mlflow client through Strato's address, registered from runs and from jobs, racing registrations,
aliases (one left on a deleted version), approvals with an ApprovalPolicy (gates with values, missing
metrics, card and signature required, two approvers, on_approval alias and deploy request), model cards,
and the approved champion loaded back with ``mlflow.pyfunc``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import strato
from strato.client import Client
from strato.config import Settings
from strato.errors import StratoError
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import lineage_edges, lineage_nodes
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

pytestmark = pytest.mark.slow

mlflow = pytest.importorskip("mlflow")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

# A job that trains and writes an MLflow model into its model directory (no mlflow.log_model): the job's
# run gets it as a logged model when the job ends.
MODEL_DIR_JOB = """\
import os
import mlflow
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=300).fit(x, y)
mlflow.log_metric("accuracy", model.score(x, y))
mlflow.sklearn.save_model(model, os.environ["SM_MODEL_DIR"], input_example=x[:3], pip_requirements=["scikit-learn"])
"""

CARD = {
    "intended_use": "classify iris flowers",
    "training_data": "sklearn iris",
    "metrics": {"accuracy": 0.97},
    "limitations": "three species only",
    "owner": "ml-team",
}


@dataclass
class Plane:
    settings: Settings
    client: Client
    url: str
    runs: dict[str, str]  # name -> run id
    jobs: dict[str, str]  # name -> final state


def _experiment(client: Any, name: str) -> str:
    """The experiment's id, created if missing (an explicit client: no fluent-API globals)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except mlflow.exceptions.MlflowException:  # created meanwhile
        return str(client.get_experiment_by_name(name).experiment_id)


def _log_runs(url: str, tmp: Path) -> dict[str, str]:
    """Runs with a logged model (with a signature or not), and one with none. ``unsigned`` holds an MLflow 2
    style model: a model directory uploaded as plain artifacts (``export/MLmodel``)."""
    from sklearn.linear_model import LogisticRegression

    x, y = sklearn_datasets.load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    # A signature given (not inferred from an input example) spares MLflow a trial prediction per model.
    signature = mlflow.models.infer_signature(x.head(3), model.predict(x.head(3)))
    runs = {}
    mlflow.set_tracking_uri(f"{url}/mlflow")
    try:
        # An experiment id per run, not mlflow.set_experiment: that sets MLFLOW_EXPERIMENT_ID in this
        # process's environment and a global, which later tests in the session would inherit.
        experiment_id = _experiment(mlflow.MlflowClient(f"{url}/mlflow"), "registry-tests")
        for name, metrics, signed in (
            ("good", {"accuracy": 0.97, "loss": 0.1}, True),
            ("bad", {"accuracy": 0.85, "loss": 0.5}, True),
            ("unsigned", {"accuracy": 0.99, "loss": 0.05}, False),
            ("empty", {"accuracy": 0.9}, None),
        ):
            with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
                mlflow.log_metrics(metrics)
                if signed:
                    mlflow.sklearn.log_model(
                        model, name="model", signature=signature, pip_requirements=["scikit-learn"]
                    )
                elif signed is False:
                    mlflow.sklearn.save_model(model, tmp / "export", pip_requirements=["scikit-learn"])
                    mlflow.log_artifacts(str(tmp / "export"), "export")
            runs[name] = run.info.run_id
    finally:
        mlflow.set_tracking_uri(None)
    return runs


def _submit_jobs(client: Client, tmp: Path) -> None:
    (tmp / "code").mkdir()
    (tmp / "code" / "train.py").write_text(MODEL_DIR_JOB)
    (tmp / "code" / "fail.py").write_text("raise SystemExit(3)\n")
    common = {"code": str(tmp / "code"), "experiment": "registry-tests", "environment": {"OMP_NUM_THREADS": "1"}}
    client.jobs.submit(strato.TrainingJob(name="trained", command="python train.py", **common))
    client.jobs.submit(strato.TrainingJob(name="broken", command="python fail.py", **common))


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    tmp = tmp_path_factory.mktemp("registry")
    with control_plane(tmp / "home", tracking=True) as (settings, client):
        url = client.url
        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=10).json()["tracking"]["state"] == "ready",
            timeout=180, interval=0.2, what="MLflow ready",
        )  # fmt: skip
        _submit_jobs(client, tmp)  # the jobs run while the test logs its runs
        runs = _log_runs(url, tmp)
        jobs = {name: client.jobs.wait(name, timeout=120).status for name in ("trained", "broken")}
        yield Plane(settings, client, url, runs, jobs)


def _error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(StratoError) as caught:
        call(*args, **kwargs)
    return caught.value.message


def test_register_from_a_run_with_tags_aliases_and_lineage(plane: Plane) -> None:
    models = plane.client.models
    run_id = plane.runs["good"]
    version = models.register(
        "iris", run_id=run_id, description="first", tags={"team": "vision"}, aliases=["challenger"], actor="ci"
    )
    assert (version["model"], version["version"], version["status"]) == ("iris", "1", "PendingManualApproval")
    assert version["run_id"] == run_id and version["aliases"] == ["challenger"]
    assert version["tags"] == {"team": "vision", "strato.approval_status": "PendingManualApproval"}
    assert version["description"] == "first" and version["source"].startswith("models:/m-")
    assert models.get("iris", "challenger")["version"] == "1"
    model = models.get("iris")
    assert model["aliases"] == {"challenger": "1"} and [v["version"] for v in model["versions"]] == ["1"]
    assert model["versions"][0]["aliases"] == ["challenger"]  # MLflow's version search leaves them out
    assert "iris" in [m["name"] for m in models.list()]
    submitted, alias = models.history("iris", 1)
    assert (submitted["action"], submitted["actor"], submitted["details"]["run_id"]) == ("submitted", "ci", run_id)
    assert (alias["action"], alias["details"]) == ("alias_set", {"alias": "challenger"})
    store = MetadataStore(plane.settings.resolved_database_url, migrate=False)
    try:
        with store.reading() as conn:
            src, dst = lineage_nodes.alias("src"), lineage_nodes.alias("dst")
            query = (
                sa.select(src.c.key, dst.c.key)
                .select_from(
                    lineage_edges.join(src, src.c.id == lineage_edges.c.src).join(dst, dst.c.id == lineage_edges.c.dst)
                )
                .where(lineage_edges.c.relation == "produced")
            )
            edges = set(conn.execute(query).all())
    finally:
        store.close()
    assert (run_id, "iris/1") in edges
    models.update("iris", 1, description="tuned", tags={"stage": "review"})
    assert models.get("iris", 1)["tags"]["stage"] == "review"
    assert models.update("iris", tags={"domain": "botany"})["tags"] == {"domain": "botany"}


def test_register_errors(plane: Plane) -> None:
    models = plane.client.models
    empty = plane.runs["empty"]
    assert _error(models.register, "iris-x", run_id=empty) == (
        f"run {empty} has no logged model; log one with mlflow.<flavor>.log_model (e.g. mlflow.sklearn.log_model) or "
        "write the model directory (an MLflow model with its MLmodel file, e.g. mlflow.sklearn.save_model into "
        "$SM_MODEL_DIR)"
    )
    missing = "0" * 32
    assert (
        _error(models.register, "iris-x", run_id=missing) == f"run '{missing}' not found on the MLflow tracking server"
    )
    assert "not both" in _error(models.register, "iris-x")
    assert "model name 'bad name' is not valid" in _error(models.register, "bad name", run_id=empty)
    assert "tags starting with 'strato.' are kept by Strato" in _error(
        models.register, "iris-x", run_id=plane.runs["good"], tags={"strato.approval_status": "Approved"}
    )
    assert "alias 'latest' is not valid" in _error(
        models.register, "iris-x", run_id=plane.runs["good"], aliases=["latest"]
    )
    assert _error(models.get, "iris-x").startswith("registered model 'iris-x' not found; register it with")


def test_register_from_jobs(plane: Plane) -> None:
    models = plane.client.models
    assert plane.jobs == {"trained": "Completed", "broken": "Failed"}
    assert _error(models.register, "from-job", job="broken") == (
        "TrainingJob 'broken' is Failed; only a Completed job's model can be registered: see why with "
        "`strato logs job broken`, fix it and run it again"
    )
    assert _error(models.register, "from-job", job="nope") == "TrainingJob 'nope' not found"
    version = models.register("from-job", job="trained")
    run_id = plane.client.jobs.get("trained").data["status"]["tracking"]["run_id"]
    assert version["run_id"] == run_id and version["source"].startswith("models:/m-")
    assert models.history("from-job", 1)[0]["details"]["job"] == "trained"


def test_racing_registrations_get_distinct_versions(plane: Plane) -> None:
    clients = [Client(plane.url) for _ in range(2)]
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def register(client: Client) -> None:
        start.wait()
        try:
            results.append(client.models.register("race", run_id=plane.runs["good"])["version"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()
    assert not errors
    assert sorted(results) == ["1", "2"]


def test_aliases_and_an_alias_left_on_a_deleted_version(plane: Plane) -> None:
    models = plane.client.models
    for _ in range(2):
        models.register("aliased", run_id=plane.runs["good"])
    assert models.set_alias("aliased", "champion", 1)["aliases"] == ["champion"]
    assert models.set_alias("aliased", "champion", 2)["version"] == "2"  # moved
    assert models.get("aliased")["aliases"] == {"champion": "2"}
    models.delete_version("aliased", 2)
    assert _error(models.get, "aliased", "champion") == (
        "alias 'champion' of model 'aliased' points at version 2, which was deleted; point it at a version that "
        "exists: strato models alias set aliased champion VERSION"
    )
    assert _error(models.approve, "aliased", "champion", reason="r").startswith("alias 'champion' of model")
    models.set_alias("aliased", "challenger", 1)
    models.delete_alias("aliased", "challenger")
    assert (
        _error(models.get, "aliased", "challenger") == "model 'aliased' has no alias 'challenger' (its aliases: none)"
    )
    assert _error(models.set_alias, "aliased", "champion", 7) == "model 'aliased' has no version 7 (versions: 1)"
    assert "alias 'v1' is not valid" in _error(models.set_alias, "aliased", "v1", 1)


def test_approve_and_reject_without_a_policy(plane: Plane) -> None:
    models = plane.client.models
    for _ in range(2):
        models.register("plain", run_id=plane.runs["bad"])
    result = models.approve("plain", 1, reason="looks fine", actor="ann")
    assert (
        result["status"] == "Approved" and result["message"] == "model 'plain' version 1 is Approved (1 of 1 approvals)"
    )
    mlflow_client = mlflow.MlflowClient(f"{plane.url}/mlflow")
    assert mlflow_client.get_model_version("plain", "1").tags["strato.approval_status"] == "Approved"
    again = _error(models.approve, "plain", 1, reason="again", actor="bob")
    assert again.startswith("model 'plain' version 1 is already Approved (by ann at ") and again.endswith(
        ": looks fine); nothing to do"
    )
    assert models.reject("plain", 2, reason="worse", actor="bob")["status"] == "Rejected"
    assert mlflow_client.get_model_version("plain", "2").tags["strato.approval_status"] == "Rejected"
    rejected = _error(models.approve, "plain", 2, reason="changed my mind", actor="ann")
    assert "model 'plain' version 2 was Rejected (by bob at " in rejected
    assert rejected.endswith("a rejected version cannot be approved: register a new version")
    assert "already Rejected" in _error(models.reject, "plain", 2, reason="again", actor="bob")
    assert _error(models.approve, "plain", 9, reason="r") == "model 'plain' has no version 9 (versions: 1, 2)"
    assert _error(models.approve, "nothing", 1, reason="r").startswith("registered model 'nothing' not found")
    assert "a reason is required" in _error(models.approve, "plain", 1, reason=" ")
    history = models.history("plain", 2)
    assert [(e["action"], e["status"], e["actor"], e["reason"]) for e in history] == [
        ("submitted", "PendingManualApproval", history[0]["actor"], "registered from run " + plane.runs["bad"]),
        ("rejected", "Rejected", "bob", "worse"),
    ]


def test_policy_gates_requirements_approvers_and_on_approval(plane: Plane) -> None:
    client, models = plane.client, plane.client.models
    policy = {
        "kind": "ApprovalPolicy",
        "name": "gated",
        "gates": ["accuracy >= 0.9", "loss < champion.loss"],
        "require": {"model_card": True, "signature": True, "approvals": 2},
        "on_approval": {"set_alias": "champion", "deploy": {"endpoint": "iris-prod"}},
    }
    assert client.apply(policy)["status"]["state"] == "Active"
    for run in ("bad", "unsigned", "good", "good"):
        models.register("gated", run_id=plane.runs[run])
    blocked = _error(models.approve, "gated", 1, reason="ship", actor="ann")
    assert blocked.startswith(
        "cannot approve model 'gated' version 1: gate 'accuracy >= 0.9' failed: accuracy = 0.85; "
    )
    assert (
        "model card required: version 1 has none; set one with `strato models card set gated 1 -f card.yaml`" in blocked
    )
    assert "loss < champion.loss" not in blocked  # no champion yet: passes with a note
    models.set_card("gated", 2, CARD)
    assert models.get("gated", 2)["source"].endswith("/export")  # the run's classic model directory
    assert "signature required: the model has none" in _error(models.approve, "gated", 2, reason="r", actor="ann")
    models.set_card("gated", 3, CARD, author="ann")
    first = models.approve("gated", 3, reason="beats baseline", actor="ann")
    assert first["status"] == "PendingManualApproval" and first["approvals"] == {
        "count": 1,
        "required": 2,
        "by": ["ann"],
    }
    assert first["message"] == "model 'gated' version 3: 1 of 2 approvals; still PendingManualApproval"
    assert "nothing to compare with" in first["checks"][1]["message"] and first["actions"] == []
    assert _error(models.approve, "gated", 3, reason="again", actor="ann") == (
        "ann already approved model 'gated' version 3 (1 of 2 approvals); the next approval must come from someone else"
    )
    final = models.approve("gated", 3, reason="agreed", actor="bob")
    assert final["status"] == "Approved" and final["aliases"] == ["champion"]
    assert final["actions"][0] == "alias 'champion' now points at version 3"
    assert "deploy requested: endpoint 'iris-prod' (no deploy hook is registered" in final["actions"][1]
    actions = [e["action"] for e in models.history("gated", 3)]
    assert actions == ["submitted", "approved", "approved", "alias_set", "deploy_requested"]
    deploy = models.history("gated", 3)[-1]
    assert deploy["details"] == {"endpoint": "iris-prod", "model": "gated", "version": "3"}
    # The champion is what MLflow serves; version 4 (same loss) does not beat it.
    mlflow.set_tracking_uri(f"{plane.url}/mlflow")
    try:
        loaded = mlflow.pyfunc.load_model("models:/gated@champion")
    finally:
        mlflow.set_tracking_uri(None)
    x, _ = sklearn_datasets.load_iris(return_X_y=True, as_frame=True)
    assert len(loaded.predict(x.head(4))) == 4
    models.set_card("gated", 4, CARD)
    worse = _error(models.approve, "gated", 4, reason="r", actor="ann")
    assert "gate 'loss < champion.loss' failed: loss = 0.1, champion.loss = 0.1 (champion is version 3)" in worse
    assert models.history("gated", 4)[-1]["action"] == "approval_blocked"
    client.apply({**policy, "gates": ["rmse < 1"]})  # a changed policy replaces the old one
    missing = _error(models.approve, "gated", 4, reason="r", actor="ann")
    assert f"gate 'rmse < 1' failed: run {plane.runs['good']} has no metric 'rmse' (it has: accuracy, loss)" in missing


def test_model_cards(plane: Plane) -> None:
    models = plane.client.models
    models.register("carded", run_id=plane.runs["good"])
    assert "has no model card" in _error(models.get_card, "carded", 1)
    first = models.set_card("carded", 1, CARD, author="ann")
    second = models.set_card("carded", 1, {**CARD, "owner": "bob", "markdown": "# Iris\nby bob"}, author="bob")
    assert (first["revision"], second["revision"]) == (1, 2)
    assert models.get_card("carded", 1)["card"]["owner"] == "bob"
    assert models.get_card("carded", 1, revision=1)["markdown"].startswith("## Intended use")
    assert [r["author"] for r in models.card_history("carded", 1)] == ["ann", "bob"]
    assert models.get("carded", 1)["description"] == "# Iris\nby bob"  # mirrored into MLflow
    bad = _error(models.set_card, "carded", 1, {**CARD, "ownr": "x"})
    assert bad == "model card: ownr: unknown field (did you mean 'owner'?)"


def test_tracking_off_answers_a_clear_error(tmp_path: Path) -> None:
    with control_plane(tmp_path / "home") as (_, client):
        assert _error(client.models.list) == (
            "experiment tracking is off: the model registry needs the managed MLflow server (setting tracking: true)"
        )
