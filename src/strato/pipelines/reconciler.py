"""Drives each ``PipelineRun``: compiles the pipeline (pinned to the revision stored when the run
started), starts every ready step as a training job, follows the jobs, evaluates conditions, reuses cached
results, retries failed steps, and ends the run.

Level-triggered and idempotent: a step's job is named after the run and the step (and the attempt), and
applying the same job twice returns the one that exists, so a control plane killed between starting a
job and recording it neither loses the step nor runs it twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strato.batch.service import BatchTransformService
from strato.errors import InvalidArgument, NotFound, StratoError
from strato.jobs.runner import STORE_SCHEME
from strato.jobs.service import JobService
from strato.jobs.task import artifact_prefix
from strato.lake.tables import LakeTables
from strato.lineage import kinds
from strato.lineage.fingerprint import fingerprint
from strato.lineage.graph import Lineage
from strato.pipelines.cache import CacheEntry, StepCache
from strato.pipelines.dag import Plan, cache_key, compile_pipeline, ready_steps, skipped_steps
from strato.pipelines.refs import evaluate_condition, resolve_refs
from strato.registry.service import RegistryService
from strato.serving.service import EndpointService
from strato.specs.batch_transform import BatchTransformJob
from strato.specs.endpoint import Endpoint
from strato.specs.pipeline import Pipeline
from strato.specs.pipeline_run import PipelineRun
from strato.specs.training_job import TrainingJob
from strato.store.artifacts import ArtifactStore
from strato.store.metadata import MetadataStore, ResourceRecord, Transition
from strato.units import parse_duration

log = logging.getLogger("strato.pipelines")
KIND = PipelineRun.KIND
DONE = ("Succeeded", "Cached", "Skipped", "Failed")
REF_RE = r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)"


@dataclass
class PipelineContext:
    store: MetadataStore
    jobs: JobService
    artifacts: ArtifactStore
    lake: LakeTables | None = None
    clock: Callable[[], float] = time.time
    registry: RegistryService | None = None  # register steps
    endpoints: EndpointService | None = None  # deploy steps
    batch: BatchTransformService | None = None  # batch_transform steps


def job_name(run: str, step: str, attempt: int) -> str:
    name = f"{run}-{step}" + (f"-r{attempt}" if attempt > 1 else "")
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:54]}-{digest}"


class PipelineRunReconciler:
    kind = KIND
    late = True  # reconciled after the step jobs in each pass (controlplane/loop.py)

    def __init__(self, ctx: PipelineContext):
        self.ctx = ctx
        self.cache = StepCache(ctx.store, self._exists, ctx.clock)

    def begin_pass(self) -> None:
        pass

    # One pass ------------------------------------------------------------------------------------
    def reconcile(self, record: ResourceRecord) -> None:
        run = PipelineRun.model_validate(record.spec)
        status = json.loads(json.dumps(record.status))
        transitions: list[Transition] = []
        if "pipeline_spec" not in status:
            problem = self._prepare(run, record.uid, status)
            if problem is not None:
                status["message"] = problem
                self.ctx.store.update_status(record.uid, status, Transition("Failed", "Invalid", problem), active=False)
                return
            started = f"pipeline {run.pipeline} revision {status['revision']}"
            transitions.append(Transition("Running", "Started", started))
        pipeline = Pipeline.model_validate(status["pipeline_spec"])
        plan = compile_pipeline(pipeline, status["parameters"])
        steps: dict[str, dict[str, Any]] = status["steps"]
        for name, step in steps.items():
            if step["state"] == "Running":
                self._follow(run, plan, name, step, status)
        failed = [n for n, s in steps.items() if s["state"] == "Failed"]
        stopping = bool(record.desired.get("stop"))
        if stopping or (failed and pipeline.on_failure == "stop"):
            why = "the run was stopped" if stopping else f"step {failed[0]!r} failed"
            for step in steps.values():
                if step["state"] == "Running" and step.get("job"):
                    self._stop_job(step["job"])
                if step["state"] in ("Pending", "Running"):
                    step.update(state="Skipped", reason=why)
        else:
            self._advance(run, plan, status)
        if all(s["state"] in DONE for s in steps.values()):
            failed = [n for n, s in steps.items() if s["state"] == "Failed"]
            state = "Stopped" if stopping else "Failed" if failed else "Succeeded"
            message = steps[failed[0]].get("message", "") if failed else f"{len(steps)} steps"
            status.update(ended_at=self.ctx.clock(), message=message)
            transitions.append(Transition(state, "Ended", message))
            self.ctx.store.update_status(record.uid, status, *transitions, active=False)
            return
        if status != record.status or transitions:
            self.ctx.store.update_status(record.uid, status, *transitions)

    def _advance(self, run: PipelineRun, plan: Plan, status: dict[str, Any]) -> None:
        """Start what is ready, again and again while steps finish at once (cache hits, conditions), so a
        fully cached run completes in one pass instead of one pass per step."""
        steps = status["steps"]
        while True:
            states = {n: s["state"] for n, s in steps.items()}
            for name in skipped_steps(plan, states, status["branches"]):
                steps[name].update(state="Skipped", reason="behind a condition branch that was not taken")
            states = {n: s["state"] for n, s in steps.items()}
            ready = ready_steps(plan, states, status["branches"])
            for name in ready:
                self._start(run, plan, name, steps[name], status)
            if not any(steps[name]["state"] in DONE for name in ready):
                return

    def _prepare(self, run: PipelineRun, run_uid: str, status: dict[str, Any]) -> str | None:
        """Pin the pipeline's current revision and check the parameters; a problem is the run's failure."""
        if run.resume_from:
            return self._resume(run, run_uid, status)
        try:
            record = self.ctx.store.get(Pipeline.KIND, run.pipeline)
            pipeline = Pipeline.model_validate(record.spec)
            plan = compile_pipeline(pipeline, run.parameters)
        except StratoError as exc:
            return exc.message
        status.update(
            run_uid=run_uid,
            pipeline_spec=record.spec,
            revision=record.status.get("revision", 1),
            parameters=plan.parameters,
            steps={name: {"state": "Pending", "type": plan.steps[name].type} for name in plan.order},
            branches={},
            started_at=self.ctx.clock(),
        )
        return None

    def _resume(self, run: PipelineRun, run_uid: str, status: dict[str, Any]) -> str | None:
        """Selective execution: the earlier run's pipeline revision and parameters, its succeeded steps
        reused as they are, the rest run again."""
        try:
            earlier = self.ctx.store.get(KIND, str(run.resume_from))
        except NotFound:
            return f"resume_from: no pipeline run {run.resume_from!r}"
        if earlier.spec.get("pipeline") != run.pipeline:
            return f"resume_from: run {run.resume_from!r} is of pipeline {earlier.spec.get('pipeline')!r}"
        if earlier.state not in ("Failed", "Stopped") or "pipeline_spec" not in earlier.status:
            return f"resume_from: run {run.resume_from!r} is {earlier.state}; only a failed or stopped run resumes"
        before = earlier.status
        steps = {}
        for name, step in before["steps"].items():
            if step["state"] in ("Succeeded", "Cached"):
                reused = {k: step[k] for k in ("type", "key", "outputs", "metrics", "result") if k in step}
                steps[name] = {**reused, "state": "Cached",
                               "cache": {"hit": True, "reason": f"reused from run {run.resume_from!r} (resumed)"}}
            else:
                steps[name] = {"state": "Pending", "type": step.get("type")}
        branches = {n: b for n, b in before.get("branches", {}).items() if steps[n]["state"] == "Cached"}
        status.update(run_uid=run_uid, pipeline_spec=before["pipeline_spec"], revision=before.get("revision"),
                      parameters=before["parameters"], steps=steps, branches=branches, started_at=self.ctx.clock(),
                      resumed_from=run.resume_from)  # fmt: skip
        return None

    # Starting a step -----------------------------------------------------------------------------
    def _start(self, run: PipelineRun, plan: Plan, name: str, step: dict[str, Any], status: dict[str, Any]) -> None:
        planned = plan.steps[name]
        outputs, metrics = _produced(status["steps"])
        now = self.ctx.clock()
        step.setdefault("started_at", now)
        try:
            definition = resolve_refs(planned.definition, outputs, metrics, status["parameters"])
            if planned.type == "condition":
                taken = evaluate_condition(planned.definition["if"], outputs, metrics, status["parameters"])
                status["branches"][name] = taken
                step.update(state="Succeeded", result=taken, ended_at=now)
                return
            if planned.type == "fail":
                step.update(state="Failed", message=str(definition.get("message") or f"step {name!r} failed"),
                            ended_at=now)  # fmt: skip
                return
        except StratoError as exc:
            step.update(state="Failed", message=exc.message, ended_at=now)
            return
        if planned.type in ("register", "deploy", "batch_transform"):
            try:
                self._start_service_step(run, name, planned.type, definition, step, status)
            except StratoError as exc:
                step.update(state="Failed", message=f"step {name!r}: {exc.message}", ended_at=now)
            return
        if step.get("retry_at") and now < float(step["retry_at"]):
            return
        key = cache_key(planned, definition, self._fingerprints(planned.definition, status["steps"], definition))
        step["key"] = key
        cache = definition.get("cache") or status["pipeline_spec"].get("cache") or {}
        use_cache = bool(cache.get("enabled", True)) and not run.no_cache
        if use_cache and int(step.get("attempt", 0)) == 0:
            expire = cache.get("expire_after")
            found = self.cache.lookup(key, parse_duration(expire) if expire is not None else None)
            step["cache"] = {"hit": found.entry is not None, "reason": found.reason}
            if found.entry is not None:
                step.update(state="Cached", outputs=found.entry.outputs, metrics=found.entry.metrics, ended_at=now,
                            job=found.entry.job)  # fmt: skip
                return
        elif not use_cache:
            step["cache"] = {"hit": False, "reason": "caching is off for this run or step"}
        attempt = int(step.get("attempt", 0)) + 1
        spec = self._job_spec(run, name, planned.type, definition, attempt)
        try:
            job, _ = self.ctx.jobs.apply(spec)
        except StratoError as exc:
            step.update(state="Failed", message=f"cannot start step {name!r}: {exc.message}", ended_at=now)
            return
        lineage = Lineage(self.ctx.store)  # the run in lineage: each step's job (its inputs and code come with it)
        lineage.node(kinds.PIPELINE_RUN, status["run_uid"], run.name, pipeline=run.pipeline)
        lineage.link((kinds.JOB, job.uid), (kinds.PIPELINE_RUN, status["run_uid"]), kinds.STEP_OF)
        step.update(state="Running", job=spec.name, attempt=attempt)
        step.pop("retry_at", None)

    def _start_service_step(
        self, run: PipelineRun, name: str, kind: str, definition: dict[str, Any], step: dict[str, Any],
        status: dict[str, Any],
    ) -> None:  # fmt: skip
        """Register a model (done at once), or create an endpoint or a batch transform (followed)."""
        now = self.ctx.clock()
        if kind == "register":
            if self.ctx.registry is None:
                raise InvalidArgument("this control plane has no model registry")
            source = status["steps"][definition["step"]]
            if not source.get("job"):
                raise InvalidArgument(f"step {definition['step']!r} has no job whose model could be registered")
            model = definition["model"]
            description = definition.get("description") or f"pipeline run {run.name}"
            actor = f"pipeline:{run.name}"
            version = self.ctx.registry.register(model, job=source["job"], description=description, actor=actor)
            number = str(version["version"])
            if definition.get("approve"):
                self.ctx.registry.approve(model, number, actor=f"pipeline:{run.name}",
                                          reason=f"approved by pipeline run {run.name}")  # fmt: skip
            step.update(state="Succeeded", ended_at=now,
                        outputs={"model_uri": f"models:/{model}/{number}", "version": number})  # fmt: skip
            self._link(status, (kinds.MODEL_VERSION, f"{model}/{number}"))
            return
        if kind == "deploy":
            if self.ctx.endpoints is None:
                raise InvalidArgument("this control plane cannot deploy endpoints")
            endpoint = Endpoint.model_validate(definition["endpoint"])
            record, _ = self.ctx.endpoints.apply(endpoint)
            self._link(status, (kinds.ENDPOINT, record.uid), endpoint.name)
            step.update(state="Running", resource={"kind": Endpoint.KIND, "name": endpoint.name},
                        deadline=now + float(definition.get("timeout") or 600))  # fmt: skip
            return
        if self.ctx.batch is None:
            raise InvalidArgument("this control plane cannot run batch transforms")
        transform = BatchTransformJob.model_validate({**definition["transform"], "name": job_name(run.name, name, 1)})
        self.ctx.batch.apply(transform)
        step.update(state="Running", resource={"kind": BatchTransformJob.KIND, "name": transform.name})
        if definition.get("timeout"):
            step["deadline"] = now + float(definition["timeout"])

    def _link(self, status: dict[str, Any], produced: tuple[str, str], name: str | None = None) -> None:
        """Lineage: the run produced this model version or endpoint."""
        lineage = Lineage(self.ctx.store)
        lineage.node(*produced, name)
        lineage.link((kinds.PIPELINE_RUN, status["run_uid"]), produced, kinds.PRODUCED)

    def _follow_resource(self, name: str, step: dict[str, Any]) -> None:
        """A deploy step ends when its endpoint is in service; a batch_transform step with its job."""
        kind, resource = step["resource"]["kind"], step["resource"]["name"]
        now = self.ctx.clock()
        try:
            record = self.ctx.store.get(kind, resource)
        except NotFound:
            step.update(state="Failed", message=f"step {name!r}: {kind} {resource!r} was deleted", ended_at=now)
            return
        done = {"Endpoint": "InService", "BatchTransformJob": "Completed"}[kind]
        if record.state == done:
            key = "url" if kind == "Endpoint" else "output"
            step.update(state="Succeeded", outputs={key: record.status.get(key)}, ended_at=now)
        elif record.state in ("Failed", "Stopped"):
            why = record.status.get("message") or record.state
            message = f"step {name!r}: {kind} {resource!r} {record.state}: {why}"
            step.update(state="Failed", message=message, ended_at=now)
        elif step.get("deadline") and now > float(step["deadline"]):
            step.update(state="Failed", message=f"step {name!r}: {kind} {resource!r} is still {record.state} after its "
                        "timeout", ended_at=now)  # fmt: skip

    def _job_spec(
        self, run: PipelineRun, step: str, kind: str, definition: dict[str, Any], attempt: int
    ) -> TrainingJob:
        fields: dict[str, Any] = dict(definition.get("job") or {}) if kind == "training" else {
            k: definition[k] for k in ("code", "command", "entrypoint", "resources", "environment") if k in definition
        }  # fmt: skip
        if definition.get("inputs"):
            fields["inputs"] = {**fields.get("inputs", {}), **definition["inputs"]}
        if definition.get("hyperparameters"):
            fields["hyperparameters"] = {**fields.get("hyperparameters", {}), **definition["hyperparameters"]}
        if definition.get("timeout") is not None:
            fields["max_runtime"] = definition["timeout"]
        retry = definition.get("retry") or {}
        if "infrastructure" in (retry.get("on") or ["infrastructure"]) and int(retry.get("attempts", 1)) > 1:
            fields["retry"] = {"max_attempts": int(retry["attempts"])}  # the job retries a lost machine itself
        labels = {**fields.get("labels", {}), "strato.pipeline": run.pipeline, "strato.pipeline-run": run.name,
                  "strato.step": step}  # fmt: skip
        return TrainingJob.model_validate({**fields, "name": job_name(run.name, step, attempt), "labels": labels})

    def _fingerprints(
        self, raw: dict[str, Any], steps: dict[str, dict[str, Any]], resolved: dict[str, Any]
    ) -> dict[str, str]:
        """What each input is, by content: an upstream output by the upstream step's own cache key (itself a
        content hash), a lake table by its pinned version, anything else by its files' content hash."""
        import re

        prints: dict[str, str] = {}
        for channel, value in (raw.get("inputs") or {}).items():
            match = re.search(REF_RE, str(value))
            if match is not None:
                upstream = steps.get(match.group(1), {})
                prints[channel] = f"{upstream.get('key')}:{match.group(2)}"
                continue
            uri = str((resolved.get("inputs") or {}).get(channel, value))
            try:
                if uri.startswith("lake://") and self.ctx.lake is not None:
                    prints[channel] = f"{uri}@{self.ctx.lake.resolve(uri)[1]}"
                elif uri.startswith(STORE_SCHEME):
                    prints[channel] = uri  # content-addressed snapshots, or a run's own outputs
                else:
                    prints[channel] = fingerprint(uri)
            except StratoError:
                prints[channel] = uri  # it will fail as the job's input, with the job's message
        return prints

    # Following a step ----------------------------------------------------------------------------
    def _follow(self, run: PipelineRun, plan: Plan, name: str, step: dict[str, Any], status: dict[str, Any]) -> None:
        if step.get("resource"):
            self._follow_resource(name, step)
            return
        if not step.get("job"):
            self._start(run, plan, name, step, status)  # waiting for a retry's backoff
            return
        try:
            job = self.ctx.store.get(TrainingJob.KIND, step["job"])
        except NotFound:
            step.update(state="Failed", message=f"the job of step {name!r} was deleted")
            return
        now = self.ctx.clock()
        if job.state == "Completed":
            prefix = f"{STORE_SCHEME}{artifact_prefix(job.name, job.uid)}"
            named = plan.steps[name].definition.get("outputs") or []
            outputs = {"output": f"{prefix}/output", "model": f"{prefix}/model"}
            outputs.update({o: f"{prefix}/output/{o}" for o in named})
            metrics = dict(job.status.get("metrics") or {})
            step.update(state="Succeeded", outputs=outputs, metrics=metrics, ended_at=now)
            if step.get("key"):
                # what the step produced and a hit must still find: its named outputs, and its model and
                # output directories when it wrote anything there
                kept = {o: uri for o, uri in outputs.items() if o in named or self._exists(uri)}
                self.cache.put(CacheEntry(step["key"], run.pipeline, name, kept, metrics, job.name, run.name, now))
            return
        if job.state not in ("Failed", "Stopped"):
            return
        retry = plan.steps[name].definition.get("retry") or {}
        attempts = int(retry.get("attempts", 1))
        user_retries = "user" in (retry.get("on") or [])  # a lost machine is retried by the job itself
        if job.state == "Failed" and user_retries and int(step.get("attempt", 1)) < attempts:
            backoff = parse_duration(retry.get("backoff", 0)) * 2 ** (int(step["attempt"]) - 1)
            step.update(job=None, retry_at=now + backoff, last_failure=job.status.get("message", ""))
            return
        reason = job.status.get("failure_reason") or job.status.get("message") or job.state
        tried = f" after {step.get('attempt', 1)} attempts" if attempts > 1 else ""
        step.update(state="Failed", message=f"step {name!r} failed{tried}: {reason}", ended_at=now)

    def _stop_job(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.ctx.jobs.stop(name)

    def _exists(self, uri: str) -> bool:
        path = uri.removeprefix(STORE_SCHEME)
        return bool(self.ctx.artifacts.exists(path) or self.ctx.artifacts.list(path))


def _produced(steps: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, float]]]:
    outputs = {n: s.get("outputs") or {} for n, s in steps.items() if s["state"] in ("Succeeded", "Cached")}
    metrics = {n: s.get("metrics") or {} for n, s in steps.items() if s["state"] in ("Succeeded", "Cached")}
    return outputs, metrics
