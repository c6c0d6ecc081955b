"""Prometheus metrics of one control plane, on a registry of its own (several apps in one process,
as in tests, never collide)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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


class Metrics:
    def __init__(self, store: MetadataStore):
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

    def observe_pass(self, seconds: float, _resources: int, failures: int) -> None:
        self.reconcile_seconds.observe(seconds)
        if failures:
            self.reconcile_failures.inc(failures)
