"""The model registry through the CLI, as a user drives it: register a version from a run logged with the
real mlflow client, a policy gate that refuses the approval with the metric's value, approve, the audit
log, aliases and model cards, ``-o json``, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.cli import ControlPlane, error_line, json_out, ok
from tests.helpers import wait_until

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

POLICY = """\
kind: ApprovalPolicy
name: cli-iris
gates: ["accuracy >= {threshold}"]
require: {{signature: true}}
on_approval: {{set_alias: champion}}
"""

CARD = """\
intended_use: classify iris flowers
training_data: sklearn iris
limitations: three species only
owner: ml-team
"""


def _logged_run(url: str) -> str:
    """A run with accuracy 0.97 and a logged model with a signature, through Strato's /mlflow."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    wait_until(
        lambda: httpx.get(f"{url}/healthz", timeout=10).json()["tracking"]["state"] == "ready",
        timeout=180,
        interval=0.2,
        what="MLflow ready",
    )
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    signature = mlflow.models.infer_signature(x.head(3), model.predict(x.head(3)))
    mlflow.set_tracking_uri(f"{url}/mlflow")
    try:
        with mlflow.start_run(run_name="cli-registry") as run:
            mlflow.log_metric("accuracy", 0.97)
            mlflow.sklearn.log_model(model, name="model", signature=signature, pip_requirements=["scikit-learn"])
    finally:
        mlflow.set_tracking_uri(None)
    return str(run.info.run_id)


def test_register_gate_approve_history_card(plane: ControlPlane, tmp_path: Path) -> None:
    run_id = _logged_run(plane.url)
    version = json_out(
        plane.cli("models", "register", "--run", run_id, "--name", "cli-iris", "--alias", "challenger",
                  "--tag", "team=vision", "--description", "first", "-o", "json")
    )  # fmt: skip
    assert isinstance(version, dict)
    assert (version["version"], version["status"], version["aliases"]) == ("1", "PendingManualApproval", ["challenger"])
    assert version["tags"]["team"] == "vision" and version["run_id"] == run_id

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(threshold=0.99))
    assert "ApprovalPolicy cli-iris applied (Active)" in ok(plane.cli("apply", "-f", policy)).stdout
    error_line(
        plane.cli("models", "approve", "cli-iris", "1", "--reason", "ship it", "--by", "ann"),
        "cannot approve model 'cli-iris' version 1: gate 'accuracy >= 0.99' failed: accuracy = 0.97",
    )
    policy.write_text(POLICY.format(threshold=0.9))
    ok(plane.cli("apply", "-f", policy))
    approved = ok(plane.cli("models", "approve", "cli-iris", "1", "--reason", "ship it", "--by", "ann")).stdout
    assert "model 'cli-iris' version 1 is Approved (1 of 1 approvals)" in approved
    assert "gate 'accuracy >= 0.9' passed: accuracy = 0.97" in approved
    assert "then: alias 'champion' now points at version 1" in approved
    error_line(
        plane.cli("models", "approve", "cli-iris", "champion", "--reason", "again", "--by", "bob"),
        "model 'cli-iris' version 1 is already Approved (by ann at ",
    )

    got = json_out(plane.cli("models", "get", "cli-iris", "--version", "champion", "-o", "json"))
    assert isinstance(got, dict) and got["status"] == "Approved" and got["aliases"] == ["challenger", "champion"]
    table = ok(plane.cli("models", "get", "cli-iris")).stdout
    assert "Approved" in table and "1/1" in table and "challenger, champion" in table
    assert "cli-iris" in ok(plane.cli("models", "list")).stdout
    history = json_out(plane.cli("models", "history", "cli-iris", "1", "-o", "json"))
    assert isinstance(history, list)
    actions = ["submitted", "alias_set", "approval_blocked", "approved", "alias_set"]
    assert [e["action"] for e in history] == actions
    assert "accuracy = 0.97" in history[2]["details"]["checks"][0]["message"]  # the refused attempt, kept
    assert history[3]["actor"] == "ann" and history[3]["reason"] == "ship it"

    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    assert "revision 1" in ok(plane.cli("models", "card", "set", "cli-iris", "1", "-f", card)).stdout
    shown = ok(plane.cli("models", "card", "get", "cli-iris", "1")).stdout
    assert "## Intended use" in shown and "classify iris flowers" in shown
    card.write_text(CARD.replace("owner:", "ownr:"))
    error_line(
        plane.cli("models", "card", "set", "cli-iris", "1", "-f", card),
        f"{card}: model card: owner: required field is missing; ownr: unknown field (did you mean 'owner'?)",
    )

    ok(plane.cli("models", "alias", "delete", "cli-iris", "challenger"))
    error_line(
        plane.cli("models", "get", "cli-iris", "--version", "challenger"),
        "model 'cli-iris' has no alias 'challenger' (its aliases: champion -> 1)",
    )


def test_usage_errors_are_one_line(plane: ControlPlane) -> None:
    error_line(plane.cli("models", "register", "--name", "x"), "give --job NAME or --run RUN_ID")
    error_line(
        plane.cli("models", "register", "--name", "x", "--run", "r", "--tag", "novalue"),
        "--tag 'novalue' must look like KEY=VALUE",
    )
    error_line(plane.cli("models", "get", "no-such-model"), "registered model 'no-such-model' not found")
    for group in (["models"], ["models", "alias"], ["models", "card"], ["models", "approve"]):
        assert "Usage" in ok(plane.cli(*group, "--help")).stdout
