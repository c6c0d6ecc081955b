"""The tuning job reconciler against the fake backend: trials as training jobs, limits, failures,
pruning, stop and resume, restarts at every awkward moment, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strato.errors import AlreadyExists, Conflict, NotFound
from strato.specs import TrainingJob
from strato.store.secrets import MASK
from tests.unit.tuning.world import METRIC, TuningWorld


def states(tw: TuningWorld) -> list[str]:
    return [t["state"] for t in tw.trials()]


def most_unfinished(tw: TuningWorld, finish: Any) -> int:
    """Drive the tuning job to its end, finishing each running trial with ``finish(job)``; returns the
    most trials that were unfinished at once."""
    most = 0
    for _ in range(50):
        tw.settle(2)
        record = tw.tuned()
        jobs = [j for j in tw.store.list("TrainingJob") if j.state not in ("Completed", "Failed", "Stopped")]
        most = max(most, len(jobs))
        if record.state in ("Completed", "Failed", "Stopped"):
            return most
        for job in jobs:
            if job.state in ("Starting", "Running"):
                finish(job.name)
    raise AssertionError(f"tuning job did not end: {tw.tuned().status}")


def test_trials_are_training_jobs_within_max_parallel_and_max_trials(tw: TuningWorld) -> None:
    tw.apply(max_trials=5, max_parallel=2)
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.8])
    most = most_unfinished(tw, lambda job: tw.run_trial(job, [0.1, next(scores)]))
    record = tw.tuned()
    assert most == 2
    assert record.state == "Completed" and not record.active
    assert [t["job"] for t in tw.trials()] == [f"tune-{n}" for n in range(5)]
    assert record.status["counts"]["completed"] == 5 and record.status["counts"]["total"] == 5
    best = record.status["best"]
    assert best["objective"] == 0.9 and best["job"] == "tune-1"
    assert record.status["message"] == "5 trials done; best trial 1 (tune-1): validation:accuracy = 0.9"
    job = tw.store.get("TrainingJob", "tune-1")
    assert job.spec["hyperparameters"] == best["hyperparameters"]
    assert job.spec["labels"] == {"strato.io/tuning-job": "tune", "strato.io/tuning-uid": record.uid,
                                  "strato.io/trial": "1"}
    assert job.spec["resources"]["cpus"] == 0.5  # the template's
    events = [e.state for e in tw.store.events(record.uid)]
    assert events == ["Pending", "Running", "Completed"]


def test_params_stay_in_the_space_and_the_seed_reproduces_them(tw: TuningWorld, tmp_path: Any) -> None:
    tw.apply(max_trials=4)
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.5]))
    first = [t["hyperparameters"] for t in tw.trials()]
    for params in first:
        assert 1e-4 <= params["lr"] <= 1e-1
        assert isinstance(params["depth"], int) and 2 <= params["depth"] <= 8
        assert params["kernel"] in ("linear", "rbf")
    again = TuningWorld(tmp_path / "again")
    again.apply(max_trials=4)
    most_unfinished(again, lambda job: again.run_trial(job, [0.5]))
    assert [t["hyperparameters"] for t in again.trials()] == first
    again.studies.close()


def test_max_failed_fails_the_tuning_job_and_stops_running_trials(tw: TuningWorld) -> None:
    tw.apply(max_trials=6, max_parallel=2, max_failed=2)
    tw.settle()
    tw.backend.emit_log(tw.task("tune-0"), "ValueError: bad learning rate\n")
    tw.backend.finish(tw.task("tune-0"), 1)
    tw.settle()
    assert tw.tuned().state == "Running"
    tw.backend.finish(tw.task("tune-2"), 1)
    tw.settle(6)
    record = tw.tuned()
    assert record.state == "Failed"
    assert record.status["message"].startswith("2 trials failed (max_failed 2); the last, trial 2 (tune-2): ")
    assert "exit code 1" in record.status["message"]
    assert tw.store.events(record.uid)[-1].reason == "MaxFailedTrials"
    assert tw.store.get("TrainingJob", "tune-1").state == "Stopped"  # the running one was stopped
    assert states(tw) == ["Failed", "Stopped", "Failed"]
    assert "ValueError: bad learning rate" in tw.trials()[0]["message"]


def test_a_trial_without_the_objective_fails_with_the_metrics_it_reported(tw: TuningWorld) -> None:
    tw.apply(max_trials=4, max_parallel=2, max_failed=2)
    tw.settle()
    for job in ("tune-0", "tune-1"):
        tw.run_trial(job, [0.3], metric="loss")
    tw.settle(4)
    trial = tw.trials()[0]
    assert trial["state"] == "Failed"
    assert trial["message"] == (
        f"completed without reporting the objective metric {METRIC!r} (it reported: loss); "
        f"report it with strato.runtime.report({METRIC!r}=value) or a metric_definitions regex"
    )
    record = tw.tuned()
    assert record.state == "Failed"
    assert record.status["message"].startswith(
        f"no trial reports the objective metric {METRIC!r} (they report: loss); fix objective.metric"
    )
    assert tw.store.events(record.uid)[-1].reason == "ObjectiveMissing"


def test_hyperband_prunes_a_poor_trial_and_stops_its_job(tw: TuningWorld) -> None:
    # max_resource 2 with reduction factor 3 makes one bracket: plain successive halving, cut at step 1.
    tw.apply(strategy="hyperband", max_trials=4, max_parallel=1,
             early_stopping={"min_resource": 1, "max_resource": 2, "reduction_factor": 3})
    for value in (0.9, 0.85):  # two strong trials that ran to the end
        tw.settle()
        job = tw.running_jobs()[0]
        tw.run_trial(job, [value] * 2)
    tw.settle()
    pruned = tw.running_jobs()[0]
    tw.report(pruned, [0.05])
    tw.settle(2)
    assert tw.store.get("TrainingJob", pruned).desired["tuning_outcome"] == "Pruned", tw.trials()
    tw.settle(4)
    job = tw.store.get("TrainingJob", pruned)
    assert job.state == "Stopped"
    assert job.status["message"].startswith("pruned by hyperband at step ")
    trial = next(t for t in tw.trials() if t["job"] == pruned)
    assert trial["state"] == "Pruned" and trial["value"] == 0.05
    assert tw.tuned().status["counts"]["pruned"] == 1
    study = tw.studies.open(tw.tuned().status["study"], "maximize")
    assert study.trials[trial["number"]].state.name == "PRUNED"


def test_stop_then_resume_continues_the_same_study(tw: TuningWorld) -> None:
    tw.apply(max_trials=5, max_parallel=2)
    tw.settle()
    tw.run_trial("tune-0", [0.6])
    tw.settle()
    tw.tuning.stop("tune")
    tw.settle(5)
    record = tw.tuned()
    assert record.state == "Stopped" and not record.active
    assert record.status["message"] == "stopped after 3 of 5 trials"
    assert states(tw) == ["Completed", "Stopped", "Stopped"]
    assert "tuning job tune stopped" in tw.store.get("TrainingJob", "tune-1").status["message"]

    tw.tuning.resume("tune")
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.7]))
    record = tw.tuned()
    assert record.state == "Completed"
    assert [t["number"] for t in tw.trials()] == [0, 1, 2, 3, 4]  # stopped trials count; none ran twice
    assert states(tw) == ["Completed", "Stopped", "Stopped", "Completed", "Completed"]
    reasons = [e.reason for e in tw.store.events(record.uid)]
    assert reasons == ["Created", "TrialsStarted", "StopRequested", "StopRequested", "Resumed", "Completed"]
    with pytest.raises(Conflict, match="'tune' is Completed; only a Stopped tuning job can be resumed"):
        tw.tuning.resume("tune")


def test_restart_after_ask_before_the_job_creates_it_once(tw: TuningWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    tw.apply(max_trials=3, max_parallel=1)
    calls = {"n": 0}
    real = tw.service.apply

    def dies(spec: TrainingJob) -> Any:
        calls["n"] += 1
        raise RuntimeError("control plane killed")

    monkeypatch.setattr(tw.service, "apply", dies)
    with pytest.raises(RuntimeError):
        tw.tick()
    study = tw.studies.open(f"strato-{tw.tuned().uid}", "maximize")
    asked = study.trials[0].params
    assert tw.trials() == []  # the status write never happened
    monkeypatch.setattr(tw.service, "apply", real)
    tw.restart()
    tw.settle()
    assert [t["number"] for t in tw.trials()] == [0]
    assert tw.store.get("TrainingJob", "tune-0").spec["hyperparameters"] == asked
    assert len(tw.store.list("TrainingJob")) == 1
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.5]))
    assert len(tw.store.list("TrainingJob")) == 3 and tw.tuned().state == "Completed"
    assert len(tw.backend.submitted) == 3


def test_restart_after_the_job_before_the_status_adopts_it(tw: TuningWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    tw.apply(max_trials=2, max_parallel=2)
    real = tw.store.update_status
    uid = tw.tuned().uid

    def dies(target: str, *args: Any, **kwargs: Any) -> None:
        if target == uid:
            raise RuntimeError("control plane killed")
        real(target, *args, **kwargs)

    monkeypatch.setattr(tw.store, "update_status", dies)
    with pytest.raises(RuntimeError):
        tw.tick()
    assert {j.name for j in tw.store.list("TrainingJob")} == {"tune-0", "tune-1"}
    monkeypatch.setattr(tw.store, "update_status", real)
    tw.restart()
    tw.settle()
    assert [t["job"] for t in tw.trials()] == ["tune-0", "tune-1"]
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.5]))
    assert len(tw.store.list("TrainingJob")) == 2 and tw.tuned().state == "Completed"


def test_restart_after_telling_optuna_before_the_status(tw: TuningWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    tw.apply(max_trials=1, max_parallel=1)
    tw.settle()
    tw.run_trial("tune-0", [0.4, 0.8])
    tw.tick()  # the job reconciler records Completed
    real = tw.store.update_status
    uid = tw.tuned().uid

    def dies(target: str, *args: Any, **kwargs: Any) -> None:
        if target == uid:
            raise RuntimeError("control plane killed")
        real(target, *args, **kwargs)

    monkeypatch.setattr(tw.store, "update_status", dies)
    with pytest.raises(RuntimeError):
        tw.tick()
    monkeypatch.setattr(tw.store, "update_status", real)
    tw.restart()
    tw.settle()
    record = tw.tuned()
    assert record.state == "Completed"
    assert tw.trials()[0]["state"] == "Completed" and tw.trials()[0]["objective"] == 0.8
    study = tw.studies.open(record.status["study"], "maximize")
    assert [t.value for t in study.trials] == [0.8]


def test_a_taken_job_name_fails_that_trial_only(tw: TuningWorld) -> None:
    tw.service.apply(TrainingJob(name="tune-0", command="python other.py"))
    tw.apply(max_trials=2, max_parallel=1, max_failed=2)
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.5]) if job != "tune-0" else None)
    first = tw.trials()[0]
    assert first["state"] == "Failed"
    assert "TrainingJob 'tune-0' already exists" in first["message"]
    assert tw.tuned().state == "Completed"
    assert tw.store.get("TrainingJob", "tune-0").spec["command"] == "python other.py"  # untouched


def test_template_secrets_are_encrypted_masked_and_passed(tw: TuningWorld) -> None:
    tw.apply(template={"command": "python train.py", "secrets": {"TOKEN": "s3cr3t"}}, max_trials=1)
    record = tw.tuned()
    assert "s3cr3t" not in json.dumps(record.spec)
    assert tw.tuning.to_api(record)["spec"]["template"]["secrets"] == {"TOKEN": MASK}
    tw.settle()
    _, task = tw.backend.submitted[0]
    assert task.secret_env["TOKEN"] == "s3cr3t"


def test_apply_is_idempotent_and_changes_are_refused(tw: TuningWorld) -> None:
    tw.apply(template={"command": "python train.py", "secrets": {"TOKEN": "x"}})
    tw.apply(template={"command": "python train.py", "secrets": {"TOKEN": "x"}})
    assert len(tw.store.list("TuningJob")) == 1
    with pytest.raises(AlreadyExists, match="tuning jobs cannot be changed"):
        tw.apply(max_trials=9)


def test_delete_removes_trial_jobs_study_and_record(tw: TuningWorld) -> None:
    tw.apply(max_trials=3, max_parallel=2)
    tw.settle()
    tw.run_trial("tune-0", [0.5])
    tw.settle()
    study = tw.tuned().status["study"]
    tw.tuning.delete("tune")
    tw.settle(5)
    assert tw.store.list() == []
    with pytest.raises(KeyError):
        import optuna

        optuna.load_study(study_name=study, storage=tw.studies.storage)
    with pytest.raises(NotFound):
        tw.tuning.get("tune")


def test_grid_walks_every_point_once(tw: TuningWorld) -> None:
    tw.apply(strategy="grid", max_trials=None, max_parallel=2, search_space={
        "depth": {"type": "int", "low": 2, "high": 4},
        "kernel": {"type": "categorical", "values": ["linear", "rbf"]},
    })
    most_unfinished(tw, lambda job: tw.run_trial(job, [0.5]))
    seen = sorted((t["hyperparameters"]["depth"], t["hyperparameters"]["kernel"]) for t in tw.trials())
    assert seen == [(d, k) for d in (2, 3, 4) for k in ("linear", "rbf")]
    assert tw.tuned().state == "Completed"


@pytest.mark.parametrize("strategy", ["random", "bayesian", "hyperband"])
def test_every_strategy_completes_with_valid_params(tw: TuningWorld, strategy: str) -> None:
    tw.apply(strategy=strategy, max_trials=6, max_parallel=2)
    scores = iter([0.1, 0.5, 0.3, 0.9, 0.2, 0.4])
    most_unfinished(tw, lambda job: tw.run_trial(job, [next(scores)]))
    record = tw.tuned()
    assert record.state == "Completed", record.status["message"]
    assert len({json.dumps(t["hyperparameters"], sort_keys=True) for t in tw.trials()}) == 6
    for trial in tw.trials():
        assert 1e-4 <= trial["hyperparameters"]["lr"] <= 1e-1
        assert 2 <= trial["hyperparameters"]["depth"] <= 8
