"""Drives each TuningJob: asks Optuna for trials, runs each as a normal TrainingJob, feeds the trials'
intermediate reports back (hyperband prunes from them), tells Optuna how each trial ended, and keeps the
tuning job's status (counts, best trial, one entry per trial).

Restarts lose nothing and run nothing twice. Optuna's study (in Strato's database) is the list of
trials; trial N always runs as the job ``<name>-<N>``; creating that job is idempotent
(``JobService.apply`` of the same spec returns the existing job). So every pass first walks the study:
a trial Optuna knows but the status does not (the control plane died between ``ask`` and the status
write) gets its job created or adopted, and a trial whose job ended is told to Optuna (told trials are
skipped). Only then are new trials asked for, counting every trial the study holds. The status is a
cache that each pass rebuilds from the study and the jobs, written in one transaction at the end.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strato.errors import NotFound, StratoError
from strato.jobs.service import JobService
from strato.jobs.states import JobState
from strato.lineage import kinds
from strato.specs.training_job import TrainingJob
from strato.specs.tuning_job import TuningJob
from strato.store.metadata import MetadataStore, ResourceRecord, Transition
from strato.store.secrets import SecretBox
from strato.tracking.tracker import Tracker, TrackingUnavailable
from strato.tuning import trials as tr
from strato.tuning.space import distributions
from strato.tuning.states import Reason, TrialState, TuningState
from strato.tuning.strategies import STRATEGIES
from strato.tuning.study import Studies, study_name

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger("strato.tuning")

OUTCOME_ATTR = "strato_outcome"  # user attribute of the Optuna trial: how Strato ended it
MESSAGE_ATTR = "strato_message"


@dataclass
class TuningContext:
    store: MetadataStore
    jobs: JobService
    secrets: SecretBox
    studies: Studies
    clock: Callable[[], float] = time.time
    wake: Callable[[], None] = lambda: None
    tracker: Tracker | None = None  # None: tracking is off


@dataclass
class Pass:
    """What one reconcile call decided, written in one transaction by ``commit``."""

    record: ResourceRecord
    spec: TuningJob
    status: dict[str, Any]
    state: TuningState
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    def move(self, state: TuningState, reason: str, message: str) -> None:
        self.status["message"] = message
        if state is not self.state:
            self.transitions.append(Transition(state, reason, message))
            self.state = state

    def unfinished(self) -> list[dict[str, Any]]:
        return [e for e in self.entries.values() if not TrialState(e["state"]).finished]


def _trial_id(frozen: FrozenTrial) -> int:
    return int(frozen._trial_id)  # the storage's id; Optuna has no public accessor for it


class TuningJobReconciler:
    kind = TuningJob.KIND

    def __init__(self, ctx: TuningContext):
        self.ctx = ctx
        self._prepared: set[str] = set()  # studies whose pruner is set in this process
        # Jobs of running trials: a change to one (a new report, an end) wakes the loop at once, so a
        # prune decision or the next trial follows within a pass instead of a tick.
        self._watched: set[str] = set()
        ctx.store.add_listener(self._changed)

    def _changed(self, uid: str) -> None:
        if uid in self._watched:
            self.ctx.wake()

    def begin_pass(self) -> None:
        """Nothing to reset: trial jobs queue for capacity in the training job reconciler."""

    def reconcile(self, record: ResourceRecord) -> None:
        spec = TuningJob.model_validate(record.spec)
        p = Pass(record, spec, copy.deepcopy(record.status), TuningState(record.state))
        p.entries = {int(e["number"]): e for e in p.status.get("trials", [])}
        if record.desired.get("delete"):
            self._delete(p)
            return
        if p.state.terminal:
            if p.state is not TuningState.STOPPED or record.desired.get("stop"):
                self._commit(p)  # nothing to do; make it inactive again
                return
            p.move(TuningState.RUNNING, Reason.RESUMED, "resumed: continuing the study")
            p.status.pop("ended_at", None)
        if not self._tracked(p, resumed=any(t.reason == Reason.RESUMED for t in p.transitions)):
            self._commit(p)
            return
        study = self._study(p)
        self._follow_all(p, study)
        self._decide(p, study)
        self._commit(p)

    def _tracked(self, p: Pass, *, resumed: bool) -> bool:
        """The tuning job's MLflow run exists (its trials' runs are its children; a resumed tuning job's
        ended run is reopened); False while the tracking server cannot take it yet."""
        if self.ctx.tracker is None or ("tracking" in p.status and not resumed):
            return True
        spec = p.spec
        params = {
            "strategy": spec.strategy,
            "objective": f"{spec.objective.direction} {spec.objective.metric}",
            "max_trials": spec.max_trials,
            "max_parallel": spec.max_parallel,
            "search_space": spec.model_dump(mode="json")["search_space"],
        }
        try:
            run = self.ctx.tracker.ensure_run(
                p.record, experiment=self._experiment(spec), params=params, lineage_kind=kinds.TUNING_JOB
            )
        except TrackingUnavailable as wait:
            p.status["message"] = wait.message
            return False
        p.status["tracking"] = {"run_id": run.run_id, "experiment_id": run.experiment_id}
        return True

    @staticmethod
    def _experiment(spec: TuningJob) -> str:
        return spec.template.experiment or spec.name

    def _study(self, p: Pass) -> optuna.Study:
        study = self.ctx.studies.open(study_name(p.record.uid), p.spec.objective.direction)
        if study.study_name not in self._prepared:
            study.pruner = STRATEGIES.get(p.spec.strategy).pruner(p.spec)
            self._prepared.add(study.study_name)
        p.status.setdefault("study", study.study_name)
        return study

    def _commit(self, p: Pass) -> None:
        p.status["trials"] = [p.entries[n] for n in sorted(p.entries)]
        p.status["counts"] = tr.counts(p.status["trials"])
        p.status["best"] = tr.best(p.status["trials"], p.spec.objective.direction)
        p.status["budget"] = p.spec.trial_budget
        if p.transitions or p.status != p.record.status or p.state.terminal:
            self.ctx.store.update_status(p.record.uid, p.status, *p.transitions, active=not p.state.terminal)

    # Trials Optuna knows -----------------------------------------------------------------------------
    def _follow_all(self, p: Pass, study: optuna.Study) -> None:
        from optuna.trial import TrialState as OptunaState

        stopping = bool(p.record.desired.get("stop") or p.status.get("failure"))
        for frozen in study.get_trials(deepcopy=False):
            entry = p.entries.get(frozen.number)
            if entry is None:  # asked, then the control plane stopped before the status write
                entry = p.entries[frozen.number] = tr.new_entry(p.record.name, frozen.number, frozen.params)
            if frozen.state is OptunaState.RUNNING:
                self._follow(p, study, frozen, entry, stopping)
            elif not TrialState(entry["state"]).finished:
                self._recorded(entry, frozen)  # told, then the control plane stopped before the status write

    def _follow(self, p: Pass, study: optuna.Study, frozen: FrozenTrial, entry: dict[str, Any], stopping: bool) -> None:
        job = self._job(entry["job"])
        if job is None:
            if entry.get("created"):
                self._end(p, study, frozen, entry, TrialState.FAILED, None, "its training job was deleted")
            elif stopping:
                self._end(p, study, frozen, entry, TrialState.STOPPED, None, "never started: the tuning job stopped")
            elif set(frozen.params) != set(p.spec.search_space):
                why = "discarded: not every parameter was sampled"
                self._end(p, study, frozen, entry, TrialState.STOPPED, None, why)
            else:
                self._create_job(p, study, frozen.number, frozen.params, entry, frozen)
            return
        if job.spec.get("labels", {}).get(tr.LABEL_UID) != p.record.uid:
            message = (
                f"the job name {entry['job']!r} is taken by another TrainingJob; delete it or rename this tuning job"
            )
            self._end(p, study, frozen, entry, TrialState.FAILED, None, message)
            return
        entry["created"] = True
        self._watched.add(job.uid)
        self._observe(p, study, frozen, entry, job, prune=not stopping)
        if JobState(job.state).terminal:
            self._watched.discard(job.uid)
            result = tr.outcome(job, p.spec.objective.metric)
            entry["objective_missing"] = result.objective_missing
            entry["reported"] = tr.reported_metrics(job)
            self._end(p, study, frozen, entry, result.state, result.objective, result.message)
        elif stopping:
            failure = p.status.get("failure")
            why = (
                f"tuning job {p.record.name} is failing: {failure['message']}"
                if failure
                else (f"tuning job {p.record.name} stopped")
            )
            self._stop_job(job, f"stopped: {why}")
            entry["state"] = TrialState.STOPPING.value

    def _observe(
        self,
        p: Pass,
        study: optuna.Study,
        frozen: FrozenTrial,
        entry: dict[str, Any],
        job: ResourceRecord,
        *,
        prune: bool,
    ) -> None:
        """Follow a trial's job: its state and times, its intermediate values (told to Optuna), pruning."""
        status = job.status
        entry["state"] = tr.running_state(job).value
        entry["message"] = tr.one_line(str(status.get("message", "")))
        for key in ("started_at", "ended_at"):
            if status.get(key) is not None:
                entry[key] = status[key]
        cpu = (status.get("usage") or {}).get("cpu_seconds")
        if cpu is not None:
            entry["cpu_seconds"] = cpu
        series = tr.intermediate_values(self.ctx.store.metrics(job.uid, [p.spec.objective.metric]))
        if not series:
            return
        last = max(series)
        entry["step"], entry["value"] = last, series[last]
        storage = self.ctx.studies.storage
        prunes = STRATEGIES.get(p.spec.strategy).prunes
        running = prune and not JobState(job.state).terminal and not job.desired.get("stop")
        for step in sorted(series):
            if step in frozen.intermediate_values:
                continue
            storage.set_trial_intermediate_value(_trial_id(frozen), step, series[step])
            # The pruner records each rung's value on the trial as it asks, so it is asked after every
            # step, also for a trial that already ended (its values then count for the trials after it).
            if prunes and study.pruner.prune(study, storage.get_trial(_trial_id(frozen))) and running:
                message = (
                    f"pruned by hyperband at step {step}: {p.spec.objective.metric} = {series[step]:g} "
                    "is not among the best at this step"
                )
                self._stop_job(job, message, outcome=tr.PRUNED)
                entry.update(state=TrialState.STOPPING.value, message=message, pruned_at=step)
                return

    def _recorded(self, entry: dict[str, Any], frozen: FrozenTrial) -> None:
        from optuna.trial import TrialState as OptunaState

        default = {OptunaState.COMPLETE: TrialState.COMPLETED, OptunaState.PRUNED: TrialState.PRUNED}
        state = frozen.user_attrs.get(OUTCOME_ATTR) or default.get(frozen.state, TrialState.FAILED).value
        entry["state"] = str(state)
        entry["objective"] = frozen.value if frozen.state is OptunaState.COMPLETE else None
        entry["message"] = str(frozen.user_attrs.get(MESSAGE_ATTR, entry.get("message", "")))

    def _end(
        self,
        p: Pass,
        study: optuna.Study,
        frozen: FrozenTrial,
        entry: dict[str, Any],
        state: TrialState,
        objective: float | None,
        message: str,
    ) -> None:
        """Tell Optuna how the trial ended (once: a told trial is skipped) and record it in the entry."""
        from optuna.trial import TrialState as OptunaState

        storage = self.ctx.studies.storage
        storage.set_trial_user_attr(_trial_id(frozen), OUTCOME_ATTR, state.value)
        storage.set_trial_user_attr(_trial_id(frozen), MESSAGE_ATTR, message)
        if state is TrialState.COMPLETED:
            study.tell(frozen.number, objective, skip_if_finished=True)
        else:
            # Optuna has no "stopped": stopped trials are told FAIL, so the samplers leave them out.
            optuna_state = OptunaState.PRUNED if state is TrialState.PRUNED else OptunaState.FAIL
            study.tell(frozen.number, state=optuna_state, skip_if_finished=True)
        entry.update(state=state.value, objective=objective, message=message)
        entry.setdefault("ended_at", self.ctx.clock())

    # Jobs ----------------------------------------------------------------------------------------
    def _job(self, name: str) -> ResourceRecord | None:
        try:
            return self.ctx.store.get(TrainingJob.KIND, name)
        except NotFound:
            return None

    def _trial_spec(self, p: Pass, number: int, params: dict[str, Any]) -> TrainingJob:
        template = p.spec.template.model_dump(mode="json")
        template["secrets"] = {k: self.ctx.secrets.decrypt(v) for k, v in template.get("secrets", {}).items()}
        labels = {
            **template.get("labels", {}),
            tr.LABEL_JOB: p.record.name,
            tr.LABEL_UID: p.record.uid,
            tr.LABEL_TRIAL: str(number),
        }
        hyperparameters = {**template.get("hyperparameters", {}), **params}
        name = tr.job_name(p.record.name, number)
        fields = {**template, "name": name, "labels": labels, "hyperparameters": hyperparameters}
        fields["experiment"] = self._experiment(p.spec)
        return TrainingJob.model_validate(fields)

    def _create_job(
        self,
        p: Pass,
        study: optuna.Study,
        number: int,
        params: dict[str, Any],
        entry: dict[str, Any],
        frozen: FrozenTrial,
    ) -> None:
        try:
            job, _ = self.ctx.jobs.apply(self._trial_spec(p, number, params))
        except StratoError as exc:
            self._end(p, study, frozen, entry, TrialState.FAILED, None, f"its training job was refused: {exc.message}")
            return
        entry["created"] = True
        entry["message"] = "training job created"
        if self.ctx.tracker is not None:
            self.ctx.tracker.lineage.link((kinds.JOB, job.uid), (kinds.TUNING_JOB, p.record.uid), kinds.TRIAL_OF)

    def _stop_job(self, job: ResourceRecord, message: str, outcome: str | None = None) -> None:
        if JobState(job.state).terminal or job.desired.get("stop"):
            return
        changes: dict[str, Any] = {"stop": True, "stop_message": message}
        if outcome is not None:
            changes["tuning_outcome"] = outcome
        self.ctx.store.set_desired(job.uid, **changes)
        self.ctx.wake()

    # What next -----------------------------------------------------------------------------------
    def _decide(self, p: Pass, study: optuna.Study) -> None:
        spec, status = p.spec, p.status
        entries = list(p.entries.values())
        if not status.get("failure") and not p.record.desired.get("stop"):
            failure = self._failure(p, entries)
            if failure is not None:
                status["failure"] = failure
                self._follow_all(p, study)  # stop the running trials now
        unfinished = p.unfinished()
        if status.get("failure"):
            reason, message = status["failure"]["reason"], status["failure"]["message"]
            if unfinished:
                p.move(p.state, reason, f"failing: {message}; stopping {len(unfinished)} running trials")
            else:
                self._ended(p, TuningState.FAILED, reason, message)
            return
        if p.record.desired.get("stop"):
            if unfinished:
                p.move(TuningState.STOPPING, Reason.STOP_REQUESTED, f"stopping {len(unfinished)} running trials")
            else:
                done = len(entries)
                self._ended(
                    p, TuningState.STOPPED, Reason.STOP_REQUESTED, f"stopped after {done} of {spec.trial_budget} trials"
                )
            return
        if len(entries) >= spec.trial_budget:
            if not unfinished:
                self._finish(p, entries)
            else:
                p.status["message"] = f"{len(unfinished)} trials running; all {spec.trial_budget} trials started"
            return
        while len(p.unfinished()) < spec.max_parallel and len(p.entries) < spec.trial_budget:
            self._ask(p, study)
        if p.state is TuningState.PENDING and p.entries:
            p.move(TuningState.RUNNING, Reason.TRIALS_STARTED, "trials started")
        running = len(p.unfinished())
        p.status["message"] = f"{len(p.entries)} of {spec.trial_budget} trials started, {running} running"

    def _ask(self, p: Pass, study: optuna.Study) -> None:
        spec = p.spec
        number = max(p.entries, default=-1) + 1  # the study numbers its trials 0, 1, 2, ...
        study.sampler = STRATEGIES.get(spec.strategy).sampler(spec, number)
        trial = study.ask(distributions(spec.search_space))
        entry = p.entries[trial.number] = tr.new_entry(p.record.name, trial.number, trial.params)
        p.status.setdefault("started_at", self.ctx.clock())
        frozen = self.ctx.studies.storage.get_trial(trial._trial_id)  # the storage's id (no public accessor)
        self._create_job(p, study, trial.number, trial.params, entry, frozen)

    def _failure(self, p: Pass, entries: list[dict[str, Any]]) -> dict[str, str] | None:
        failed = [e for e in entries if e["state"] == TrialState.FAILED]
        if len(failed) < p.spec.max_failed:
            return None
        last = max(failed, key=lambda e: int(e["number"]))
        missing = self._objective_missing(p, entries)
        if missing is not None:
            return {"reason": Reason.OBJECTIVE_MISSING, "message": missing}
        return {
            "reason": Reason.MAX_FAILED,
            "message": f"{len(failed)} trials failed (max_failed {p.spec.max_failed}); "
            f"the last, trial {last['number']} ({last['job']}): {last['message']}",
        }

    def _objective_missing(self, p: Pass, entries: list[dict[str, Any]]) -> str | None:
        """When every trial that ended so far completed without the objective metric, say so plainly."""
        ended = [e for e in entries if e["state"] in (TrialState.COMPLETED, TrialState.FAILED)]
        if not ended or not all(e.get("objective_missing") for e in ended):
            return None
        reported = sorted({name for e in ended for name in e.get("reported", [])})
        said = f"they report: {', '.join(reported)}" if reported else "they report no metrics"
        metric = p.spec.objective.metric
        return (
            f"no trial reports the objective metric {metric!r} ({said}); fix objective.metric or report it "
            f"with strato.runtime.report({metric!r}=value) or a metric_definitions regex"
        )

    def _finish(self, p: Pass, entries: list[dict[str, Any]]) -> None:
        best = tr.best(entries, p.spec.objective.direction)
        if best is not None:
            message = (
                f"{len(entries)} trials done; best trial {best['number']} ({best['job']}): "
                f"{p.spec.objective.metric} = {best['objective']:g}"
            )
            self._ended(p, TuningState.COMPLETED, Reason.COMPLETED, message)
            return
        missing = self._objective_missing(p, entries)
        if missing is not None:
            self._ended(p, TuningState.FAILED, Reason.OBJECTIVE_MISSING, missing)
            return
        self._ended(p, TuningState.FAILED, Reason.NO_RESULT, f"none of the {len(entries)} trials completed")

    def _ended(self, p: Pass, state: TuningState, reason: str, message: str) -> None:
        p.status["ended_at"] = p.status.get("ended_at") or self.ctx.clock()
        p.move(state, reason, message)

    # Delete ----------------------------------------------------------------------------------------
    def _delete(self, p: Pass) -> None:
        """Trial jobs go with their tuning job (their artifacts stay), then the study, then the record."""
        name = study_name(p.record.uid)
        numbers = set(p.entries)
        if p.status.get("study"):
            numbers |= {t.number for t in self.ctx.studies.open(name, p.spec.objective.direction).get_trials()}
        waiting = 0
        for number in sorted(numbers):
            job = self._job(tr.job_name(p.record.name, number))
            if job is None or job.spec.get("labels", {}).get(tr.LABEL_UID) != p.record.uid:
                continue
            waiting += 1
            if not job.desired.get("delete"):
                self.ctx.jobs.delete(job.name)
        if waiting:
            p.status["message"] = f"deleting: waiting for {waiting} trial jobs to be deleted"
            self._commit(p)
            return
        self.ctx.studies.delete(name)
        self.ctx.store.delete(p.record.uid)
