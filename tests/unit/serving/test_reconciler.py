"""The endpoint reconciler over the fake backend and an injected clock: replicas started and replaced,
blue/green updates, failures to load, autoscaling from the router's counters, scale to zero, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strato.compute import FakeBackend, TaskResources
from strato.errors import NotFound
from strato.serving.reconciler import EndpointContext, EndpointReconciler
from strato.serving.routes import RouteTable
from strato.serving.service import EndpointService
from strato.specs.endpoint import Endpoint
from strato.store.metadata import MetadataStore
from tests.unit.jobs.world import Clock


class World:
    def __init__(self, tmp_path: Path, cpus: float = 4):
        self.clock = Clock()
        self.backend = FakeBackend(TaskResources(cpus=cpus, memory=8 * 1024**3), clock=self.clock)
        self.store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", clock=self.clock)
        self.routes = RouteTable(clock=self.clock)
        self.serving: set[int] = set()  # ports whose replica answers /ping
        self.aliases = {"champion": "3"}
        self.ctx = EndpointContext(
            store=self.store, backend=self.backend, routes=self.routes, resolve_model=self.resolve,
            model_env=lambda: ({}, {}), cache_dir=tmp_path / "cache", public_url="http://strato",
            clock=self.clock, ping=lambda port: port in self.serving,
        )  # fmt: skip
        self.reconciler = EndpointReconciler(self.ctx)
        self.service = EndpointService(self.store, self.backend)
        self.models = tmp_path / "models"

    def resolve(self, reference: str) -> tuple[str, str | None]:
        if "@" in reference:
            name, alias = reference.removeprefix("models:/").split("@")
            return f"models:/{name}/{self.aliases[alias]}", self.aliases[alias]
        return reference, None

    def apply(self, **fields: Any) -> None:
        fields.setdefault("variants", [{"model": "models:/iris@champion"}])
        self.service.apply(Endpoint(name="iris", **fields))

    def tick(self, seconds: float = 1.0) -> dict[str, Any]:
        self.clock.now += seconds
        for record in self.store.list(active=True):
            self.reconciler.reconcile(record)
        try:
            record = self.store.get("Endpoint", "iris")
        except NotFound:
            return {}
        return {"state": record.state, **record.status}

    def replicas(self, variant: str = "default") -> list[dict[str, Any]]:
        return list(self.tick(0)["variants"][variant]["replicas"])

    def ready_all(self) -> None:
        for task in self.backend.list_tasks():
            if self.backend.status(task).state.value == "RUNNING":
                self.serving.add(self.port(task))

    def port(self, task_id: str) -> int:
        spec = self.backend._get(task_id).spec
        return int(spec.command[spec.command.index("--port") + 1])


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_replicas_start_become_ready_and_are_routed(world: World) -> None:
    world.apply(variants=[{"model": "models:/iris@champion", "replicas": {"min": 2}}])
    status = world.tick()
    assert status["state"] == "Creating" and len(status["variants"]["default"]["replicas"]) == 2
    assert status["variants"]["default"]["model"] == "models:/iris/3"  # the alias, pinned
    assert world.routes.get("iris").replicas["default"] == []  # not ready: not routed
    world.ready_all()
    status = world.tick()
    assert status["state"] == "InService" and status["url"] == "http://strato/endpoints/iris/invocations"
    assert len(world.routes.get("iris").replicas["default"]) == 2
    command = world.backend._get(world.backend.list_tasks()[0]).spec.command
    assert command[command.index("--model") + 1] == "models:/iris/3" and "--warm-keep-alive" in command


def test_a_crashed_replica_is_replaced(world: World) -> None:
    world.apply()
    world.tick()
    world.ready_all()
    world.tick()
    first = world.replicas()[0]
    world.backend.finish(first["task_id"], exit_code=137)
    status = world.tick()
    replicas = status["variants"]["default"]["replicas"]
    assert [r["id"] for r in replicas] != [first["id"]] and replicas[0]["state"] == "Starting"
    assert world.routes.get("iris").replicas["default"] == []  # the dead one left the table


def test_a_model_that_fails_to_load_fails_the_endpoint_with_its_reason(world: World) -> None:
    world.apply()
    for _ in range(3):
        world.tick()
        task = world.replicas()[0]["task_id"]
        world.backend.emit_log(
            task, '[strato] failure-reason "cannot load model models:/iris/3: ModuleNotFoundError: x"\n'
        )
        world.backend.finish(task, exit_code=3)
    status = world.tick()
    assert status["state"] == "Failed" and "ModuleNotFoundError" in status["message"]
    assert status["variants"]["default"]["replicas"] == []  # it stops trying
    world.aliases["champion"] = "4"  # a new model is a new chance
    status = world.tick()
    assert len(status["variants"]["default"]["replicas"]) == 1


def test_moving_the_alias_rolls_blue_green(world: World) -> None:
    world.apply()
    world.tick()
    world.ready_all()
    world.tick()
    old = world.replicas()[0]
    world.aliases["champion"] = "4"
    status = world.tick()
    assert status["state"] == "Updating"
    assert [r["model"] for r in status["variants"]["default"]["replicas"]] == ["models:/iris/3", "models:/iris/4"]
    assert [r.replica_id for r in world.routes.get("iris").replicas["default"]] == [old["id"]]  # old still serves
    world.ready_all()
    status = world.tick()
    assert [r["model"] for r in status["variants"]["default"]["replicas"]] == ["models:/iris/4"]
    assert world.backend._get(old["task_id"]).stopped  # stopped after the new one was routed
    assert status["state"] == "InService" and status["variants"]["default"]["version"] == "4"


def test_without_capacity_for_blue_green_replicas_are_replaced_one_at_a_time(tmp_path: Path) -> None:
    world = World(tmp_path, cpus=1)
    world.apply()
    world.tick()
    world.ready_all()
    world.tick()
    old = world.replicas()[0]
    world.aliases["champion"] = "4"
    status = world.tick()
    assert "one at a time" in status["variants"]["default"]["message"]
    assert world.backend._get(old["task_id"]).stopped


def test_in_flight_requests_scale_the_variant_up_to_max(world: World) -> None:
    world.apply(
        variants=[{"model": "models:/iris@champion", "replicas": {"min": 1, "max": 3}}],
        autoscaling={"target_in_flight": 2},
    )
    world.tick()
    world.ready_all()
    world.tick()
    world.routes.get("iris").replicas["default"][0].in_flight = 5  # the router's live counter
    status = world.tick()
    assert status["variants"]["default"]["desired"] == 3
    assert len(status["variants"]["default"]["replicas"]) == 3
    decision = status["decisions"][-1]
    assert decision["desired"] == 3 and decision["inputs"]["in_flight"] == 5


def test_a_spent_hard_budget_holds_the_endpoint_at_its_size(world: World) -> None:
    world.apply(
        variants=[{"model": "models:/iris@champion", "replicas": {"min": 1, "max": 3}}],
        autoscaling={"target_in_flight": 2},
    )
    world.tick()
    world.ready_all()
    world.tick()
    world.store.set_desired(world.store.get("Endpoint", "iris").uid, budget_hold=True)  # what budgets/_enforce sets
    world.routes.get("iris").replicas["default"][0].in_flight = 5
    status = world.tick()
    assert status["variants"]["default"]["desired"] == 1
    assert len(status["variants"]["default"]["replicas"]) == 1


def test_serverless_scales_to_zero_when_idle_and_back_for_a_held_request(world: World) -> None:
    variants = [{"model": "models:/iris@champion", "replicas": {"min": 0, "max": 1}}]
    world.apply(variants=variants, autoscaling={"idle_timeout": "60s", "downscale_delay": 0})
    world.tick()
    world.ready_all()
    assert world.tick()["state"] == "InService"
    status = world.tick(61)
    assert status["variants"]["default"]["replicas"] == [] and "scaled to zero" in status["message"]
    world.routes.waiting["iris"] = 1  # the router holds a request
    status = world.tick()
    assert len(status["variants"]["default"]["replicas"]) == 1


def test_delete_stops_every_replica_and_forgets_the_endpoint(world: World) -> None:
    world.apply(variants=[{"model": "models:/iris@champion", "replicas": {"min": 2}}])
    world.tick()
    world.ready_all()
    world.tick()
    tasks = [r["task_id"] for r in world.replicas()]
    world.service.delete("iris")
    assert world.tick() == {}
    assert all(world.backend._get(t).stopped for t in tasks)
    assert world.routes.get("iris") is None
    world.reconciler.begin_pass()  # the next pass releases the ended tasks (and their scratch space)
    assert not set(tasks) & set(world.backend.list_tasks())


def test_shadow_replicas_are_routed_apart_with_their_share(world: World) -> None:
    world.apply(shadow={"model": "models:/iris/5", "sample_percent": 25})
    world.tick()
    world.ready_all()
    world.tick()
    routes = world.routes.get("iris")
    assert len(routes.replicas["default"]) == 1 and len(routes.shadow) == 1 and routes.shadow_share == 0.25


def _serve_then_move_alias(world: World) -> dict[str, Any]:
    world.tick()
    world.ready_all()
    world.tick()
    old = world.replicas()[0]
    world.aliases["champion"] = "4"
    world.tick()
    world.ready_all()
    return old


def test_canary_gets_its_share_then_everything_when_its_metrics_hold(world: World) -> None:
    world.apply(rollout={"strategy": "canary", "canary_percent": 20, "interval": "60s", "min_requests": 5})
    old = _serve_then_move_alias(world)
    status = world.tick()
    assert status["state"] == "Updating" and "20% of the traffic" in status["message"]
    routes = world.routes.get("iris")
    assert routes.weights == pytest.approx({"default": 0.8, "default:canary": 0.2})
    assert [r.replica_id for r in routes.replicas["default"]] == [old["id"]]
    for _ in range(10):
        world.routes.variant_stats("iris", "default:canary").observe(0.01, error=False)
    status = world.tick(61)
    assert status["state"] == "InService" and [r["model"] for r in world.replicas()] == ["models:/iris/4"]
    assert world.routes.get("iris").weights == {"default": 1.0}


def test_a_canary_over_its_error_budget_is_rolled_back_and_not_retried(world: World) -> None:
    world.apply(rollout={"strategy": "canary", "interval": "10m", "max_error_rate": 0.1, "min_requests": 10})
    old = _serve_then_move_alias(world)
    world.tick()
    stats = world.routes.variant_stats("iris", "default:canary")
    for i in range(10):
        stats.observe(0.01, error=i < 3)  # 30% errors
    status = world.tick()
    assert status["state"] == "InService"
    assert "rolled back models:/iris/4: error rate 30.0% over 10 requests" in status["message"]
    assert [r["id"] for r in world.replicas()] == [old["id"]]
    assert world.routes.get("iris").weights == {"default": 1.0}
    status = world.tick(60)
    assert [r["id"] for r in world.replicas()] == [old["id"]]  # the bad revision is not started again
    world.aliases["champion"] = "5"  # a new model gets its own chance
    assert len(world.replicas()) == 2


def test_linear_rollout_steps_up_every_interval(world: World) -> None:
    world.apply(rollout={"strategy": "linear", "step_percent": 50, "interval": "30s"})
    _serve_then_move_alias(world)
    world.tick()
    assert world.routes.get("iris").weights["default:canary"] == pytest.approx(0.5)
    world.tick(31)
    assert world.routes.get("iris").weights == {"default": 1.0}
