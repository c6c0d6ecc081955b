"""The cost ledger and budgets on a real control plane: a finished job shows what it cost on the reference
target, a hard budget refuses a run that would exceed it (with the numbers) and stops what runs once it is
spent, a budget that already ended is refused, and the report shows the spend and the levers."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import ErrorCode, StratoError
from strato.specs import TrainingJob
from strato.specs.budget import Budget
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

SCRIPT = "import time, sys\ntime.sleep(float(sys.argv[-1]) if len(sys.argv) > 1 else 0.5)\nprint('done')\n"


def job(code: Path, name: str, **fields: object) -> TrainingJob:
    return TrainingJob.model_validate(
        {"name": name, "code": str(code), "command": "python train.py", "resources": {"cpus": 1, "memory": "2Gi"},
         **fields}
    )  # fmt: skip


def test_jobs_are_priced_and_budgets_hold(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(SCRIPT)
    with control_plane(tmp_path / "home") as (settings, client):
        first = client.jobs.submit(job(code, "priced"))
        first.wait(timeout=120)
        assert first.status == "Completed"
        cost = first.data["status"]["cost"]
        assert 0 < cost < 0.01  # seconds of a small instance on demand
        assert first.data["status"]["cost_target"] == "aws:us-east-1:on_demand"
        records = client.cost.records()
        mine = [r for r in records if r["name"] == "priced"]
        assert len(mine) == 1 and mine[0]["item"] == "attempt-1" and mine[0]["cloud"] == "aws"
        assert mine[0]["cost"] == pytest.approx(mine[0]["hourly"] * mine[0]["seconds"] / 3600)

        # A hard budget with room for 10 minutes of that instance refuses a 1000-hour limit, with the numbers.
        hourly = mine[0]["hourly"]
        client.apply(Budget(name="team", scope={"labels": {"team": "a"}}, amount=hourly / 6 + cost, mode="hard"))
        with pytest.raises(StratoError) as info:
            client.jobs.submit(job(code, "too-long", labels={"team": "a"}, max_runtime="1000h"))
        assert "could cost" in info.value.message and "budget 'team' has" in info.value.message
        assert info.value.code == ErrorCode.RESOURCES_IMPOSSIBLE
        # A job within the budget runs; once the budget is spent, what runs in its scope is stopped.
        ok = client.jobs.submit(job(code, "fits", labels={"team": "a"}, max_runtime="5m", hyperparameters={"s": 600}))
        client.apply(Budget(name="team", scope={"labels": {"team": "a"}}, amount=1e-9, mode="hard"))
        wait_until(lambda: ok.refresh().status == "Stopped", 120, what="the over-budget job stopped")
        budget = client.get("budgets", "team")
        assert budget["status"]["state"] == "Exceeded" and "TrainingJob/fits" in budget["status"]["held"]
        with pytest.raises(StratoError, match="budget 'team' is spent"):
            client.jobs.submit(job(code, "after", labels={"team": "a"}, max_runtime="1m"))

        with pytest.raises(StratoError, match="ends 2020-01-01, which is in the past"):
            client.apply(Budget(name="old", scope={"kind": "Endpoint"}, amount=5, ends="2020-01-01"))

        report = client.cost.report(1)
        assert report["total"] >= cost and report["by_kind"]["TrainingJob"] >= cost
        assert {lever["lever"] for lever in report["levers"]} >= {
            "which instance (right-sizing)", "how you buy (spot, commitments)", "idle time (scale to zero)",
            "where it runs (cloud and region)", "managed-service premium",
        }  # fmt: skip
        del settings
