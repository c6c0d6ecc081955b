"""Prometheus metrics of one control plane, on a registry of its own (several apps in one process,
as in tests, never collide)."""

from __future__ import annotations

import http.client
import json
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from strato.serving.routes import LATENCY_BUCKETS, RouteTable
from strato.store.metadata import MetadataStore


class ResourceStates(Collector):
    """``strato_resources{kind,state}``, counted from the store at scrape time."""

    def __init__(self, store: MetadataStore):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("strato_resources", "Resources by kind and state", labels=["kind", "state"])
        for (kind, state), count in sorted(Tally((r.kind, r.state) for r in self.store.list()).items()):
            family.add_metric([kind, state], count)
        yield family


class EndpointMetrics(Collector):
    """Per endpoint and variant, read at scrape time from the router's counters (the request path only
    adds integers) and each replica's ``/stats`` (batch sizes)."""

    def __init__(self, routes: RouteTable):
        self.routes = routes

    def collect(self) -> Iterator[Any]:
        labels = ["endpoint", "variant"]
        requests = CounterMetricFamily("strato_endpoint_requests", "Inference requests answered", labels=labels)
        errors = CounterMetricFamily("strato_endpoint_errors", "5xx answers and failed forwards", labels=labels)
        rejected = CounterMetricFamily("strato_endpoint_rejected", "429s: every replica was busy", labels=["endpoint"])
        latency = HistogramMetricFamily("strato_endpoint_request_seconds", "Latency at the router", labels=labels)
        in_flight = GaugeMetricFamily("strato_endpoint_in_flight", "Requests at replicas now", labels=labels)
        replicas = GaugeMetricFamily("strato_endpoint_replicas", "Ready replicas", labels=labels)
        held = GaugeMetricFamily("strato_endpoint_held_requests", "Requests waiting for a replica", labels=["endpoint"])
        cold = CounterMetricFamily("strato_endpoint_cold_starts", "Replicas started with none ready", labels=labels)
        batch = GaugeMetricFamily("strato_endpoint_mean_batch_size", "Rows per model call (batching)", labels=labels)
        for (name, variant), stats in sorted(self.routes.stats.items()):
            if not variant:
                rejected.add_metric([name], stats.rejected)
                continue
            requests.add_metric([name, variant], stats.requests)
            errors.add_metric([name, variant], stats.errors)
            cumulative, total = [], 0
            for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], stats.buckets, strict=True):
                total += count
                cumulative.append((bound, total))
            latency.add_metric([name, variant], cumulative, stats.latency_sum)
        for (name, variant), count in sorted(self.routes.cold_starts.items()):
            cold.add_metric([name, variant], count)
        for name in self.routes.names():
            routes = self.routes.get(name)
            if routes is None:
                continue
            held.add_metric([name], self.routes.waiting.get(name, 0))
            for variant, ready in [*routes.replicas.items(), ("shadow", routes.shadow)]:
                replicas.add_metric([name, variant], len(ready))
                in_flight.add_metric([name, variant], sum(r.in_flight for r in ready))
                sizes = [size for r in ready if (size := _mean_batch(r.port)) is not None]
                if sizes:
                    batch.add_metric([name, variant], sum(sizes) / len(sizes))
        yield from (requests, errors, rejected, latency, in_flight, replicas, held, cold, batch)


def _mean_batch(port: int) -> float | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        conn.request("GET", "/stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
    except (OSError, ValueError):
        return None
    value = stats.get("mean_batch_size")
    return float(value) if value is not None else None


class Metrics:
    def __init__(self, store: MetadataStore, routes: RouteTable | None = None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "strato_http_requests", "API requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "strato_http_request_seconds", "API request latency", ["route"], registry=self.registry
        )
        self.reconcile_seconds = Histogram(
            "strato_reconcile_pass_seconds", "Duration of reconcile passes", registry=self.registry
        )
        self.reconcile_failures = Counter(
            "strato_reconcile_failures", "Reconciler calls that raised", registry=self.registry
        )
        self.registry.register(ResourceStates(store))
        if routes is not None:
            self.registry.register(EndpointMetrics(routes))

    def observe_pass(self, seconds: float, _resources: int, failures: int) -> None:
        self.reconcile_seconds.observe(seconds)
        if failures:
            self.reconcile_failures.inc(failures)
