"""Drives each ``Endpoint`` towards its spec: the right number of replicas of the right model per
variant (and the shadow), each a process started through the compute backend, and the router's table
listing exactly the ready ones.

One pass per endpoint:
1. **Observe.** A replica whose task ended is dropped (a failure while starting is the variant's
   message, read from the replica's log); a starting one that answers ``/ping`` becomes ready.
2. **Decide.** The autoscaling policy (``serving/autoscaling.py``) turns the router's live counters
   (in-flight, held requests, last request) into a desired count; the decision and its inputs are kept.
3. **Act.** Start replicas of the variant's current model up to the desired count; once enough of
   them are ready, replicas of an older model leave the routing table and are stopped (blue/green:
   the old model serves until the new one can, so an update drops no request); extra replicas beyond
   the desired count are stopped, least busy first, after leaving the table.
4. **Publish** the table and the status (``Creating``, ``InService``, ``Updating``, ``Failed``).

A model given as ``models:/NAME@ALIAS`` is resolved on every pass, so moving the alias rolls the
variant to the new version.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from strato.compute.base import CapacityUnavailable, ComputeBackend, TaskResources, TaskSpec, TaskState
from strato.compute.service_process import free_port
from strato.errors import NotFound, StratoError
from strato.jobs.logscan import last_failure_reason
from strato.serving.autoscaling import AutoscalingConfig, AutoscalingState, decide
from strato.serving.capture import CaptureWriter
from strato.serving.rollout import RolloutState, advance, share, verdict
from strato.serving.routes import EndpointRoutes, ReplicaRoute, RouteTable, VariantStats
from strato.specs.base import Resources
from strato.specs.endpoint import Endpoint, Replicas
from strato.store.metadata import MetadataStore, ResourceRecord, Transition

log = logging.getLogger("strato.serving")
MAX_START_FAILURES = 3  # in a row, per model: then the variant is Failed until its spec or model changes
STOP_GRACE = 30.0  # seconds a replica leaving the table has to finish its requests
SHADOW = "shadow"
DECISIONS_KEPT = 20
READY_POLL = 0.05  # seconds between looks at a starting replica
SHADOW_MIN_COMPARED = 20  # answers compared before the agreement is worth recording
SHADOW_REPORT_EVERY = 10.0  # seconds between records of a shadow comparison


class EndpointState:
    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    FAILED = "Failed"
    DELETING = "Deleting"


@dataclass
class EndpointContext:
    store: MetadataStore
    backend: ComputeBackend
    routes: RouteTable
    resolve_model: Callable[[str], tuple[str, str | None]]  # model reference -> (pinned URI, version)
    model_env: Callable[[], tuple[dict[str, str], dict[str, str]]]  # (env, secret env) to fetch models
    cache_dir: Path
    public_url: str
    lake_root: str = ""  # where data capture tables go by default
    clock: Callable[[], float] = time.time
    wake_soon: Callable[[float], None] = lambda delay: None  # another pass after ``delay`` seconds
    report_shadow: Callable[[str, int, int], None] = lambda model, compared, agreed: None  # to the registry
    ping: Callable[[int], bool] = field(default=lambda port: _ping(port))  # is a replica on this port serving?


@dataclass
class VariantPlan:
    """What a variant (or the shadow) asks for, however the spec spelled it."""

    name: str
    model: str
    replicas: Replicas
    resources: Resources
    weight: float


@dataclass
class ReplicaRecord:
    id: str
    task_id: str
    port: int
    model: str
    revision: str = ""  # the model and replica settings it was started with
    state: str = "Starting"  # Starting | Ready
    started_at: float = 0.0
    ready_at: float | None = None


@dataclass
class VariantStatus:
    model: str = ""
    version: str | None = None
    revision: str = ""  # model + what a replica is started with: a change rolls the replicas over
    desired: int = 0
    replicas: list[ReplicaRecord] = field(default_factory=list)
    failures: int = 0  # start failures in a row of the current model
    message: str = ""
    autoscaling: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] | None = None  # a canary or linear rollout of ``revision`` in progress
    rolled_back: str = ""  # a revision rolled back by its metrics: not tried again until the spec changes

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantStatus:
        replicas = [ReplicaRecord(**r) for r in data.get("replicas", [])]
        return cls(**{**{k: v for k, v in data.items() if k != "replicas"}, "replicas": replicas})


def canary_key(variant: str) -> str:
    """The routing name of a variant's new revision while it is being rolled out."""
    return f"{variant}:canary"


def passed_env() -> dict[str, str]:
    """What a replica takes from the control plane's environment: where Python finds things, and where
    warm pools live."""
    names = ("PATH", "HOME", "LANG", "PYTHONPATH", "STRATO_WARM_DIR")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def _revision(model: str, plan: VariantPlan, spec: Endpoint) -> str:
    """What a replica is started with; replicas of another revision are replaced (blue/green)."""
    settings = [
        model,
        plan.resources.model_dump(mode="json"),
        spec.batching.model_dump(mode="json"),
        spec.limits.max_payload,
    ]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _ping(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        conn.request("GET", "/ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class EndpointReconciler:
    kind = Endpoint.KIND

    def __init__(self, ctx: EndpointContext):
        self.ctx = ctx
        self._live: dict[str, ReplicaRoute] = {}  # replica id -> its route object (keeps router counters)
        self._captures: dict[str, tuple[tuple[str, float], CaptureWriter]] = {}  # endpoint -> (settings, writer)
        self._shadow_reported: dict[str, tuple[int, float]] = {}  # endpoint -> (compared, when) last reported
        self._stopping: set[str] = set()  # tasks of replicas that left: released once they end

    def begin_pass(self) -> None:
        """Release the tasks of stopped replicas once they ended (their scratch space goes with them)."""
        for task_id in list(self._stopping):
            try:
                ended = self.ctx.backend.status(task_id).state is not TaskState.RUNNING
            except NotFound:
                ended = True
            if ended:
                with contextlib.suppress(NotFound):
                    self.ctx.backend.release(task_id)
                self._stopping.discard(task_id)

    # The pass ---------------------------------------------------------------------------------------
    def reconcile(self, record: ResourceRecord) -> None:
        spec = Endpoint.model_validate(record.spec)
        if record.desired.get("delete"):
            self._delete(record)
            return
        status = {k: VariantStatus.from_dict(v) for k, v in record.status.get("variants", {}).items()}
        decisions = list(record.status.get("decisions", []))
        plans = self._plans(spec)
        for gone in set(status) - {p.name for p in plans}:  # a variant removed from the spec
            for replica in status.pop(gone).replicas:
                self._stop(replica)
        for plan in plans:
            current = status.setdefault(plan.name, VariantStatus())
            decision = self._variant(spec, plan, current, hold=bool(record.desired.get("budget_hold")))
            if decision is not None:
                decisions = [*decisions, decision][-DECISIONS_KEPT:]
        self._publish(spec, plans, status)
        self._write(record, spec, status, decisions)

    def _plans(self, spec: Endpoint) -> list[VariantPlan]:
        plans = [VariantPlan(v.name, v.model, v.replicas, v.resources, v.weight) for v in spec.variants]
        if spec.shadow is not None:
            s = spec.shadow
            plans.append(VariantPlan(SHADOW, s.model, s.replicas, s.resources, 0.0))
        return plans

    def _variant(
        self, spec: Endpoint, plan: VariantPlan, current: VariantStatus, *, hold: bool = False
    ) -> dict[str, Any] | None:
        try:
            model, version = self.ctx.resolve_model(plan.model)
        except StratoError as exc:
            current.message = f"cannot resolve model {plan.model}: {exc.message}"
            model, version = current.model, current.version  # keep serving what runs
        revision = _revision(model, plan, spec)
        if model and revision != current.revision:
            current.model, current.version, current.revision, current.failures = model, version, revision, 0
            if plan.name == SHADOW:
                self.ctx.routes.shadow.pop(spec.name, None)  # a new shadow model is compared from scratch
        self._observe(current)
        now = self.ctx.clock()
        name = spec.name
        config = AutoscalingConfig(
            min_replicas=plan.replicas.min,
            max_replicas=plan.replicas.max or 1,
            target_in_flight=spec.autoscaling.target_in_flight,
            upscale_delay=spec.autoscaling.upscale_delay,
            downscale_delay=spec.autoscaling.downscale_delay,
            smoothing=spec.autoscaling.smoothing,
            idle_timeout=spec.autoscaling.idle_timeout,
        )
        state = (
            AutoscalingState(**current.autoscaling)
            if current.autoscaling
            else AutoscalingState(desired=max(1, plan.replicas.min))  # serverless starts warm
        )
        ready = [r for r in current.replicas if r.state == "Ready"]
        queued = self.ctx.routes.waiting.get(name, 0) if plan.name != SHADOW else 0
        decision = decide(
            config, state, now=now, in_flight=self.ctx.routes.in_flight(name, plan.name), running=len(ready),
            queued=queued, last_request_at=self.ctx.routes.last_request.get(name),
        )  # fmt: skip
        if hold and decision.desired > max(len(current.replicas), plan.replicas.min):
            # A hard budget is spent: no scale-up beyond what runs (scale-down still happens).
            decision = replace(decision, desired=max(len(current.replicas), plan.replicas.min))
        changed = decision.desired != current.desired
        current.desired = decision.desired
        current.autoscaling = asdict(decision.state)
        if current.model:
            self._act(spec, plan, current)
        if not changed:
            return None
        return {
            "at": now,
            "variant": plan.name,
            "desired": decision.desired,
            "reason": decision.reason,
            "inputs": decision.inputs,
        }

    def _observe(self, current: VariantStatus) -> None:
        kept = []
        for replica in current.replicas:
            try:
                task = self.ctx.backend.status(replica.task_id)
            except NotFound:
                task = None
            if task is None or task.state is not TaskState.RUNNING:
                self._forget(replica)
                if replica.state == "Starting" and replica.revision == current.revision:
                    current.failures += 1
                    current.message = self._failure_reason(replica, task)
                self._stopping.add(replica.task_id)  # released at the next pass, after its log was read
                continue
            if replica.state == "Starting" and self.ctx.ping(replica.port):
                replica.state, replica.ready_at = "Ready", self.ctx.clock()
                if replica.revision == current.revision:
                    current.failures, current.message = 0, ""
            if replica.state == "Starting":
                self.ctx.wake_soon(READY_POLL)  # a held request waits for it: notice it soon, not next tick
            kept.append(replica)
        current.replicas = kept

    def _failure_reason(self, replica: ReplicaRecord, task: Any) -> str:
        try:
            text = self.ctx.backend.logs(replica.task_id, 0, 256 * 1024).data.decode(errors="replace")
        except StratoError:
            text = ""
        reason = last_failure_reason(text)
        if reason:
            return reason
        tail = " | ".join(text.strip().splitlines()[-3:])
        code = f"exit code {task.exit_code}" if task is not None else "lost"
        return f"replica of {replica.model} ended while starting ({code}){': ' + tail if tail else ''}"

    def _act(self, spec: Endpoint, plan: VariantPlan, current: VariantStatus) -> None:
        fresh = [r for r in current.replicas if r.revision == current.revision]
        stale = [r for r in current.replicas if r.revision != current.revision]
        ready_fresh = [r for r in fresh if r.state == "Ready"]
        if current.rolled_back == current.revision:
            if stale:  # the old revision keeps serving until the spec (or the alias) changes
                current.replicas = stale
                return
            current.rolled_back = ""  # nothing old is left: the new revision is better than nothing
        if current.failures < MAX_START_FAILURES:
            while len(fresh) < current.desired:
                replica = self._start(spec, plan, current)
                if replica is None:
                    break
                fresh.append(replica)
            if len(fresh) < current.desired and stale and not [r for r in fresh if r.state == "Starting"]:
                # No room for blue/green: replace one replica at a time instead. While none is ready the
                # router holds requests (up to their timeout) rather than failing them.
                victim = min(stale, key=self._in_flight)
                self._stop(victim)
                stale.remove(victim)
                current.message = "no capacity for a blue/green update: replacing replicas one at a time"
        # Blue/green: the old model leaves once the new one has as many ready replicas as wanted
        # (at once, or after a canary or linear rollout whose metrics stayed within bounds).
        if stale and len(ready_fresh) >= max(1, min(current.desired, len(stale))):
            if self._rolled_out(spec, plan, current, fresh):
                for replica in stale:
                    self._stop(replica)
                stale = []
            elif current.rolled_back == current.revision:
                fresh = []  # stopped by the rollback
        extra = len(fresh) - current.desired
        if extra > 0:
            starting_first = sorted(fresh, key=lambda r: (r.state == "Ready", self._in_flight(r)))
            for replica in starting_first[:extra]:
                self._stop(replica)
                fresh.remove(replica)
        current.replicas = stale + fresh

    def _rolled_out(
        self, spec: Endpoint, plan: VariantPlan, current: VariantStatus, fresh: list[ReplicaRecord]
    ) -> bool:
        """Whether the new revision may take all the traffic now; rolls it back (stops ``fresh``) when
        its metrics cross the policy's bounds."""
        policy = spec.rollout
        if policy.strategy == "all_at_once":
            return True
        now = self.ctx.clock()
        key = canary_key(plan.name)
        state = RolloutState(**current.rollout) if current.rollout else None
        if state is None or state.revision != current.revision:
            state = RolloutState(current.revision, 0, now)
            self.ctx.routes.stats[(spec.name, key)] = VariantStats()  # judge this revision on its own answers
        stats = self.ctx.routes.variant_stats(spec.name, key)
        reason = verdict(policy, stats.requests, stats.errors, stats.p99())
        if reason is not None:
            for replica in fresh:
                self._stop(replica)
            current.rolled_back, current.rollout = current.revision, None
            current.message = f"rolled back {current.model}: {reason}"
            log.warning("endpoint %s: %s", spec.name, current.message)
            return False
        following = advance(policy, state, now)
        current.rollout = None if following is None else asdict(following)
        if following is not None:
            percent = share(policy, following) * 100
            current.message = f"{policy.strategy} rollout of {current.model}: {percent:.0f}% of the traffic"
        else:
            current.message = ""
        return following is None

    def _in_flight(self, replica: ReplicaRecord) -> int:
        route = self._live.get(replica.id)
        return route.in_flight if route else 0

    def _start(self, spec: Endpoint, plan: VariantPlan, current: VariantStatus) -> ReplicaRecord | None:
        port = free_port()
        env, secret_env = self.ctx.model_env()
        command = [
            sys.executable, "-m", "strato.serving.launcher", "--model", current.model, "--name", spec.name,
            "--port", str(port), "--cache", str(self.ctx.cache_dir), "--max-payload", str(spec.limits.max_payload),
            "--batching", json.dumps(spec.batching.model_dump(mode="json")),
        ]  # fmt: skip
        if current.version:
            command += ["--version", current.version]
        if spec.warm_pool is not None:
            command += ["--warm-keep-alive", str(spec.warm_pool.keep_alive)]
        task = TaskSpec(
            command=command,
            env={"PYTHONUNBUFFERED": "1", **passed_env(), **env},
            secret_env=secret_env,
            resources=TaskResources(cpus=plan.resources.cpus, memory=plan.resources.memory, gpus=plan.resources.gpus),
            labels={"strato.kind": Endpoint.KIND, "strato.name": spec.name, "strato.variant": plan.name},
        )
        try:
            task_id = self.ctx.backend.submit(task)
        except CapacityUnavailable as exc:
            current.message = f"waiting for capacity to start a replica: {exc.message}"
            return None
        if not any(r.state == "Ready" for r in current.replicas):
            key = (spec.name, plan.name)
            self.ctx.routes.cold_starts[key] = self.ctx.routes.cold_starts.get(key, 0) + 1
        replica = ReplicaRecord(
            id=f"{plan.name}-{uuid.uuid4().hex[:8]}",
            task_id=task_id,
            port=port,
            model=current.model,
            revision=current.revision,
            started_at=self.ctx.clock(),
        )
        log.info("endpoint %s: started replica %s of %s (task %s)", spec.name, replica.id, current.model, task_id)
        return replica

    def _stop(self, replica: ReplicaRecord) -> None:
        self._forget(replica)
        with contextlib.suppress(NotFound):
            self.ctx.backend.stop(replica.task_id, STOP_GRACE)
        self._stopping.add(replica.task_id)

    def _forget(self, replica: ReplicaRecord) -> None:
        route = self._live.pop(replica.id, None)
        if route is not None:
            route.broken = True  # a request that already picked it retries elsewhere

    # Publish ----------------------------------------------------------------------------------------
    def _publish(self, spec: Endpoint, plans: list[VariantPlan], status: dict[str, VariantStatus]) -> None:
        ready: dict[str, list[ReplicaRoute]] = {}
        weights = dict(spec.weights())
        for plan in plans:
            current = status[plan.name]
            new_share = share(spec.rollout, RolloutState(**current.rollout)) if current.rollout else None
            for replica in current.replicas:
                if replica.state != "Ready":
                    continue
                # During a rollout the new revision is routed as a variant of its own, with its share.
                canary = new_share is not None and replica.revision == current.revision
                name = canary_key(plan.name) if canary else plan.name
                route = self._live.get(replica.id)
                if route is None or route.variant != name:
                    route = ReplicaRoute(replica.id, name, "127.0.0.1", replica.port, version=current.version)
                    self._live[replica.id] = route
                ready.setdefault(name, []).append(route)
            ready.setdefault(plan.name, [])
            if new_share is not None and plan.name in weights:
                base = weights[plan.name]
                weights[plan.name], weights[canary_key(plan.name)] = base * (1 - new_share), base * new_share
        shadow = ready.pop(SHADOW, [])
        self.ctx.routes.publish(
            EndpointRoutes(
                name=spec.name,
                weights=weights,
                replicas=ready,
                max_in_flight=spec.limits.max_in_flight,
                timeout=spec.limits.timeout,
                max_payload=spec.limits.max_payload,
                shadow=shadow,
                shadow_share=(spec.shadow.sample_percent / 100) if spec.shadow else 0.0,
                capture=self._capture(spec),
                feature_service=spec.features.service if spec.features else None,
                log_features=bool(spec.features and spec.features.log),
            )
        )

    def _capture(self, spec: Endpoint) -> CaptureWriter | None:
        """The endpoint's data capture writer, made (and started) once per destination and sample rate."""
        capture = spec.data_capture
        existing = self._captures.get(spec.name)
        if not capture.enabled:
            if existing is not None:
                existing[1].close()
                del self._captures[spec.name]
            return None
        table = capture.destination or f"endpoint-{spec.name}-capture"
        uri = (
            f"{self.ctx.lake_root}/{table.removeprefix('lake://')}"
            if "://" not in table or table.startswith("lake://")
            else table
        )
        settings = (uri, capture.sample_percent)
        if existing is not None and existing[0] == settings:
            return existing[1]
        if existing is not None:
            existing[1].close()
        # Few, large commits: each Delta append also reads the table's log, so its cost grows per commit.
        writer = CaptureWriter(uri, sample_percent=capture.sample_percent, flush_rows=20_000, flush_interval=5.0)
        writer.start()
        self._captures[spec.name] = (settings, writer)
        return writer

    def _write(
        self, record: ResourceRecord, spec: Endpoint, status: dict[str, VariantStatus], decisions: list[dict[str, Any]]
    ) -> None:
        serving = [s for name, s in status.items() if name != SHADOW]
        ready = sum(1 for s in serving for r in s.replicas if r.state == "Ready")
        updating = any(r.revision != s.revision and s.rolled_back != s.revision for s in serving for r in s.replicas)
        rolled_back = [s for s in serving if s.rolled_back and s.rolled_back == s.revision]
        failed = [s for s in serving if s.failures >= MAX_START_FAILURES]
        if failed and not ready:
            state, message = EndpointState.FAILED, failed[0].message
        elif updating or failed:
            rolling = next(
                (f"rolling out: {s.message}" for s in serving if s.rollout and s.message), "rolling to a new model"
            )
            state, message = EndpointState.UPDATING, (failed[0].message if failed else rolling)
        elif ready and rolled_back:
            state, message = EndpointState.IN_SERVICE, rolled_back[0].message
        elif ready or all(s.desired == 0 for s in serving):
            state, message = (
                EndpointState.IN_SERVICE,
                "serving" if ready else "scaled to zero; the next request starts a replica",
            )
        else:
            state, message = (
                EndpointState.CREATING,
                next((s.message for s in serving if s.message), "starting replicas"),
            )
        shadow = self.ctx.routes.shadow.get(spec.name)
        if shadow and SHADOW in status:
            self._report_shadow(spec.name, status[SHADOW].model, shadow[0], shadow[1])
        body = {
            "variants": {name: {**asdict(s)} for name, s in status.items()},
            "decisions": decisions,
            "url": f"{self.ctx.public_url}/endpoints/{spec.name}/invocations",
            "message": message,
            "shadow_comparison": {"compared": shadow[0], "agreed": shadow[1]} if shadow else None,
        }
        if body == record.status and state == record.state:
            return
        self.ctx.store.update_status(record.uid, body, Transition(state, reason=state, message=message))

    def _report_shadow(self, name: str, model: str, compared: int, agreed: int) -> None:
        """Tell the registry how often the shadow model agreed with production (so an approval policy can
        gate on ``shadow:agreement``), at most every ``SHADOW_REPORT_EVERY`` seconds and when it changed."""
        last = self._shadow_reported.get(name)
        now = self.ctx.clock()
        if compared < SHADOW_MIN_COMPARED or (last and (last[0] == compared or now - last[1] < SHADOW_REPORT_EVERY)):
            return
        self._shadow_reported[name] = (compared, now)
        try:
            self.ctx.report_shadow(model, compared, agreed)
        except Exception as exc:  # the registry may be down or off: the comparison stays in the status
            log.warning("endpoint %s: could not record the shadow comparison of %s: %s", name, model, exc)

    def _delete(self, record: ResourceRecord) -> None:
        for data in record.status.get("variants", {}).values():
            for replica in VariantStatus.from_dict(data).replicas:
                self._stop(replica)
        self.ctx.routes.remove(record.name)
        captured = self._captures.pop(record.name, None)
        if captured is not None:
            captured[1].close()
        self.ctx.store.delete(record.uid)
