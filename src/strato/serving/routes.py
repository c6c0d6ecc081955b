"""The routing table the endpoint router reads on every request and the endpoint reconciler writes:
which replicas of which variant are ready, each variant's share of traffic, and the live counters the
autoscaler needs (in-flight requests, requests held for a replica, last request time).

The reconciler runs in another thread: it publishes a whole new ``EndpointRoutes`` per change (one
reference assignment) and keeps each ``ReplicaRoute`` object for the replica's life, so the router's
counters on it survive republishing.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(eq=False)
class ReplicaRoute:
    replica_id: str
    variant: str
    host: str
    port: int
    in_flight: int = 0
    pool: Any = None  # the router's connection pool to this replica, made on first use
    version: str | None = None  # the model version it serves (data capture records it)
    broken: bool = False  # the router could not reach it; skipped until the reconciler replaces it


@dataclass
class VariantStats:
    """Counted on the request path with plain integer arithmetic; Prometheus reads them at scrape time
    (``server/observability.py``), so a request pays no metrics library."""

    requests: int = 0
    errors: int = 0  # 5xx answers and failed forwards
    rejected: int = 0  # 429: every replica was saturated
    latencies: list[float] = field(default_factory=list)  # seconds, the most recent ones
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))  # per bucket, +Inf last
    latency_sum: float = 0.0

    def observe(self, seconds: float, error: bool) -> None:
        self.requests += 1
        self.errors += int(error)
        self.latency_sum += seconds
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latencies.append(seconds)
        if len(self.latencies) > 2048:
            del self.latencies[:1024]

    def p99(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class EndpointRoutes:
    name: str
    weights: dict[str, float]  # variant -> share of traffic, summing to 1
    replicas: dict[str, list[ReplicaRoute]]  # variant -> its ready replicas
    max_in_flight: int = 64  # per replica
    timeout: float = 60.0
    max_payload: int = 6 * 1024**2
    shadow: list[ReplicaRoute] = field(default_factory=list)
    shadow_share: float = 0.0
    capture: Any = None  # a CaptureWriter when data capture is on
    feature_service: str | None = None  # look up these online features for each request
    log_features: bool = False


class RouteTable:
    def __init__(self, clock: Callable[[], float] = time.time, rng: random.Random | None = None):
        self._routes: dict[str, EndpointRoutes] = {}
        self.stats: dict[tuple[str, str], VariantStats] = {}
        self.waiting: dict[str, int] = {}  # endpoint -> requests held for a replica
        self.last_request: dict[str, float] = {}
        self.shadow: dict[str, list[int]] = {}  # endpoint -> [compared, agreed]
        self.cold_starts: dict[tuple[str, str], int] = {}  # (endpoint, variant) -> replicas started from none
        self.clock = clock
        self.rng = rng or random.Random()
        self._lock = threading.Lock()  # for the counters the reconciler reads
        self.on_demand: Callable[[str], None] = lambda name: None  # wakes the reconciler

    def publish(self, routes: EndpointRoutes) -> None:
        self._routes[routes.name] = routes

    def close(self) -> None:
        """Flush and stop every endpoint's data capture (the control plane is stopping)."""
        for routes in list(self._routes.values()):
            if routes.capture is not None:
                routes.capture.close()

    def names(self) -> list[str]:
        return sorted(self._routes)

    def remove(self, name: str) -> None:
        self._routes.pop(name, None)

    def get(self, name: str) -> EndpointRoutes | None:
        return self._routes.get(name)

    def in_flight(self, name: str, variant: str) -> int:
        routes = self._routes.get(name)
        return sum(r.in_flight for r in routes.replicas.get(variant, [])) if routes else 0

    def variant_stats(self, name: str, variant: str) -> VariantStats:
        key = (name, variant)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = VariantStats()
        return stats

    def touch(self, name: str) -> None:
        self.last_request[name] = self.clock()

    def shadow_agreement(self, name: str, agreed: bool) -> None:
        counts = self.shadow.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] += int(agreed)

    def pick(self, routes: EndpointRoutes, exclude: set[int]) -> ReplicaRoute | None:
        """A replica with room: the variant by weight, then the less busy of two at random (the power of
        two choices: near-least-loaded without scanning). A saturated variant falls back to any other
        replica with room; None when every replica is at ``max_in_flight``."""
        variant = self._variant(routes)
        chosen = self.least_busy(routes, routes.replicas.get(variant, []), exclude)
        if chosen is not None:
            return chosen
        others = [r for v, rs in routes.replicas.items() if v != variant for r in rs]
        return self.least_busy(routes, others, exclude)

    def _variant(self, routes: EndpointRoutes) -> str:
        point, total = self.rng.random(), 0.0
        for variant, share in routes.weights.items():
            total += share
            if point < total and routes.replicas.get(variant):
                return variant
        return next((v for v, rs in routes.replicas.items() if rs), "")

    def least_busy(
        self, routes: EndpointRoutes, candidates: list[ReplicaRoute], exclude: set[int]
    ) -> ReplicaRoute | None:
        room = [r for r in candidates if not r.broken and id(r) not in exclude and r.in_flight < routes.max_in_flight]
        if not room:
            return None
        if len(room) == 1:
            return room[0]
        a, b = self.rng.sample(room, 2)
        return a if a.in_flight <= b.in_flight else b
