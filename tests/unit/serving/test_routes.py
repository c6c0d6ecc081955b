"""How the router's table picks a replica: variants by weight, the less busy of two, pushback when full."""

from __future__ import annotations

import random
from collections import Counter

from strato.serving.routes import EndpointRoutes, ReplicaRoute, RouteTable, VariantStats


def table_with(
    weights: dict[str, float], replicas: dict[str, int], max_in_flight: int = 4
) -> tuple[RouteTable, EndpointRoutes]:
    table = RouteTable(rng=random.Random(7))
    made = {v: [ReplicaRoute(f"{v}-{i}", v, "127.0.0.1", 9000 + i) for i in range(n)] for v, n in replicas.items()}
    routes = EndpointRoutes(name="iris", weights=weights, max_in_flight=max_in_flight, replicas=made)
    table.publish(routes)
    return table, routes


def test_variants_get_traffic_by_weight() -> None:
    table, routes = table_with({"blue": 0.9, "green": 0.1}, {"blue": 1, "green": 1})
    picks = Counter(table.pick(routes, set()).variant for _ in range(10_000))  # type: ignore[union-attr]
    assert 0.88 < picks["blue"] / 10_000 < 0.92


def test_the_less_busy_of_two_replicas_is_picked() -> None:
    table, routes = table_with({"blue": 1.0}, {"blue": 2})
    busy, idle = routes.replicas["blue"]
    busy.in_flight = 3
    assert all(table.pick(routes, set()) is idle for _ in range(100))


def test_a_full_variant_spills_to_another_and_none_when_all_are_full() -> None:
    table, routes = table_with({"blue": 1.0, "green": 0.0}, {"blue": 1, "green": 1}, max_in_flight=1)
    blue, green = routes.replicas["blue"][0], routes.replicas["green"][0]
    blue.in_flight = 1
    assert table.pick(routes, set()) is green
    green.in_flight = 1
    assert table.pick(routes, set()) is None  # the router answers 429


def test_broken_and_already_tried_replicas_are_skipped() -> None:
    table, routes = table_with({"blue": 1.0}, {"blue": 3})
    a, b, c = routes.replicas["blue"]
    a.broken = True
    assert table.pick(routes, {id(b)}) is c


def test_latency_stats_keep_buckets_sum_and_p99() -> None:
    stats = VariantStats()
    for i in range(100):
        stats.observe(0.001 * (i + 1), error=i >= 95)
    assert stats.requests == 100 and stats.errors == 5
    assert sum(stats.buckets) == 100 and abs(stats.latency_sum - 5.05) < 1e-9
    assert stats.p99() == 0.1
