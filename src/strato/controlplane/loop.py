"""A level-triggered reconcile loop (Kubernetes controllers, Ray Serve's controller).

Each pass reads every active resource from the metadata store and hands it to the reconciler of its
kind, oldest first, so capacity is granted in submission order. A reconciler compares desired with
observed state and takes one idempotent step. A failure in one resource is logged with an id and never
stops the pass. Passes run every ``tick_interval`` seconds and at once when something calls ``wake``
(an apply, a stop, a task ending).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from strato.store.metadata import MetadataStore, ResourceRecord

log = logging.getLogger("strato.controlplane")


class Reconciler(Protocol):
    kind: str

    def begin_pass(self) -> None:
        """Called once before each pass (reset per-pass state, such as capacity already found full)."""

    def reconcile(self, record: ResourceRecord) -> None: ...


class ReconcileLoop:
    def __init__(
        self,
        store: MetadataStore,
        reconcilers: list[Reconciler],
        *,
        tick_interval: float = 0.5,
        on_pass: Callable[[float, int, int], None] | None = None,
    ):
        self.store = store
        self.reconcilers = {r.kind: r for r in reconcilers}
        self.tick_interval = tick_interval
        self.on_pass = on_pass  # (seconds, resources seen, failures): for metrics
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def wake(self, *_: object) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """One pass over every active resource; returns how many reconcilers failed."""
        started = time.perf_counter()
        failures = 0
        records = self.store.list(active=True)
        # Orchestrators (``late = True``: pipeline runs) go after what they orchestrate, so a step job
        # that ends in this pass is seen by its run in the same pass, not one tick later.
        records.sort(key=lambda r: bool(getattr(self.reconcilers.get(r.kind), "late", False)))
        for each in self.reconcilers.values():
            each.begin_pass()
        for record in records:
            reconciler = self.reconcilers.get(record.kind)
            if reconciler is None:
                continue
            try:
                reconciler.reconcile(record)
            except Exception:
                failures += 1
                error_id = uuid.uuid4().hex[:8]
                log.exception("reconcile of %s %r failed (error id %s)", record.kind, record.name, error_id)
        self.passes += 1
        if self.on_pass is not None:
            self.on_pass(time.perf_counter() - started, len(records), failures)
        return failures

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="strato-reconcile", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # the store itself failed: log and keep going, it may come back
                log.exception("reconcile pass failed")
            self._wake.wait(self.tick_interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
