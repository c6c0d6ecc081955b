"""Tuning jobs through the CLI, as a user runs them: apply a YAML, wait, get the tuning job and its
trials, stop and resume; and the one-line errors of bad search spaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import ControlPlane, error_line, json_out, ok

# Reports an objective that peaks at x = 0.3, one report per "epoch".
TRIAL = """\
import argparse
from strato import runtime
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
for epoch in range(1, args.epochs + 1):
    runtime.report(step=epoch, score=epoch * (1 - abs(args.x - 0.3)))
print("done", flush=True)
"""

TUNING = """\
kind: TuningJob
name: {name}
template:
  code: ./src
  command: python trial.py
  hyperparameters: {{epochs: 2}}
  resources: {{cpus: 0.5, memory: 256Mi}}
search_space:
  x: {{type: float, low: 0.0, high: 1.0}}
objective: {{metric: score, direction: maximize}}
max_trials: {trials}
max_parallel: 2
seed: 5
"""


def write_tuning(directory: Path, text: str) -> Path:
    (directory / "src").mkdir(parents=True, exist_ok=True)
    (directory / "src" / "trial.py").write_text(TRIAL, encoding="utf-8")
    path = directory / "tuning.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_apply_wait_get_and_trials(plane: ControlPlane, tmp_path: Path) -> None:
    path = write_tuning(tmp_path, TUNING.format(name="e2e-tune", trials=3))
    applied = ok(plane.cli("apply", "-f", path))
    assert "TuningJob e2e-tune applied (Pending)" in applied.stdout

    waited = ok(plane.cli("wait", "tuning", "e2e-tune", "--timeout", "120"))
    assert "TuningJob e2e-tune" in waited.stdout and "Completed" in waited.stdout
    assert "best:      trial " in waited.stdout

    data = json_out(plane.cli("get", "tuning", "e2e-tune", "-o", "json"))
    assert isinstance(data, dict)
    assert data["kind"] == "TuningJob" and data["name"] == "e2e-tune"
    assert data["spec"]["template"]["code"].startswith("strato://snapshots/")  # uploaded by the CLI
    status = data["status"]
    assert status["state"] == "Completed"
    assert status["counts"]["completed"] == 3 and status["counts"]["total"] == 3
    best = status["best"]
    assert best["objective"] == max(t["objective"] for t in status["trials"])
    assert set(best["hyperparameters"]) == {"x"}

    table = ok(plane.cli("get", "trials", "tuning", "e2e-tune")).stdout
    for column in ("TRIAL", "JOB", "STATE", "OBJECTIVE", "HYPERPARAMETERS"):
        assert column in table
    for number in range(3):
        assert f"e2e-tune-{number}" in table
    assert table.count("Completed") == 3

    rows = json_out(plane.cli("get", "trials", "tuning", "e2e-tune", "-o", "json"))
    assert isinstance(rows, list) and [r["number"] for r in rows] == [0, 1, 2]
    assert all(r["step"] == 2 for r in rows)

    listing = ok(plane.cli("get", "tuning")).stdout
    assert "e2e-tune" in listing and "3/3" in listing and best["job"] in listing
    detail = ok(plane.cli("get", "tuning", "e2e-tune")).stdout
    assert "objective: maximize score" in detail and "x = " in detail
    assert "trials:    3/3 trials: 3 completed" in detail
    job = plane.job(best["job"])
    assert job["spec"]["labels"]["strato.io/tuning-job"] == "e2e-tune"

    watched = ok(plane.cli("tuning", "watch", "e2e-tune", "--timeout", "60")).stdout
    assert "e2e-tune Completed: 3/3 trials: 3 completed" in watched and "e2e-tune-2" in watched

    error_line(plane.cli("tuning", "resume", "e2e-tune"), "'e2e-tune' is Completed",
               "only a Stopped tuning job can be resumed")
    error_line(plane.cli("logs", "tuning", "e2e-tune"), "this verb works on jobs, not 'tuning'")
    ok(plane.cli("delete", "tuning", "e2e-tune"))


@pytest.mark.parametrize(
    ("search_space", "fragments"),
    [
        ("  x: {type: float, low: 1.0, high: 0.5}\n",
         ["tuning.yaml", "search_space.x: empty range: low (1) must be below high (0.5)"]),
        ("  x: {type: flaot, low: 0.0, high: 1.0}\n",
         ["tuning.yaml", "search_space.x.type: unknown parameter type 'flaot' (did you mean 'float'?)"]),
        ("  x: {type: categorical}\n",
         ["tuning.yaml", "search_space.x: a categorical parameter needs a non-empty list of values"]),
    ],
    ids=["empty-range", "unknown-type", "categorical-without-values"],
)
def test_bad_search_space_is_one_line(plane: ControlPlane, tmp_path: Path, search_space: str,
                                      fragments: list[str]) -> None:
    text = TUNING.format(name="e2e-bad", trials=2).replace("  x: {type: float, low: 0.0, high: 1.0}\n", search_space)
    path = write_tuning(tmp_path, text)
    error_line(plane.cli("apply", "-f", path), *fragments)


def test_objective_no_trial_reports_fails_the_tuning_job(plane: ControlPlane, tmp_path: Path) -> None:
    text = TUNING.format(name="e2e-nometric", trials=2).replace("metric: score", "metric: accuracy")
    path = write_tuning(tmp_path, text)
    ok(plane.cli("apply", "-f", path))
    waited = plane.cli("wait", "tuning", "e2e-nometric", "--timeout", "120", "-o", "json")
    assert waited.returncode == 1
    data = json_out(plane.cli("get", "tuning", "e2e-nometric", "-o", "json"))
    assert isinstance(data, dict)
    status = data["status"]
    assert status["state"] == "Failed"
    assert status["message"].startswith("no trial reports the objective metric 'accuracy' (they report: score)")
    trial = status["trials"][0]
    assert trial["state"] == "Failed"
    assert "completed without reporting the objective metric 'accuracy' (it reported: score)" in trial["message"]
