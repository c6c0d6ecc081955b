"""The cost engine of a workspace, as the control plane runs it: the catalog (shipped, or the one
``strato cost catalog update`` wrote into the home), the pricer for the reference target, the ledger
thread, budgets, quotes for resource requests and specs, and the report."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strato.cost.advice import commitments, idle_endpoints, rightsizing
from strato.cost.budgets import BudgetService
from strato.cost.catalog import Catalog, load_catalog
from strato.cost.ledger import CostLedger, LedgerStore
from strato.cost.pricing import CostTarget, Pricer
from strato.cost.quote import QuoteOption, QuoteRequest, quote
from strato.cost.report import build_report
from strato.errors import InvalidArgument
from strato.specs.base import Resources, ResourceSpec
from strato.specs.pipeline import Pipeline
from strato.specs.training_job import TrainingJob
from strato.store.metadata import MetadataStore

GIB = 1024**3
log = logging.getLogger("strato.cost")
IDLE_AFTER = 6 * 3600.0  # an endpoint with replicas and no request for this long is flagged idle


class CostService:
    def __init__(
        self,
        store: MetadataStore,
        *,
        target: str = "aws:us-east-1:on_demand",
        catalog_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        ledger_interval: float = 30.0,
        last_request: Callable[[], dict[str, float]] = dict,
    ):
        self.store = store
        self.target = CostTarget.parse(target)
        self.catalog_dir = catalog_dir
        self.clock = clock
        self.last_request = last_request
        self._catalog: Catalog | None = None
        self._pricer: Pricer | None = None
        self.budgets = BudgetService(store, self.pricer, clock=clock)
        self.ledger = CostLedger(
            store, self.pricer, clock=clock, interval=ledger_interval, on_pass=self.budgets.evaluate
        )
        self.records = LedgerStore(store)

    def catalog(self) -> Catalog:
        if self._catalog is None:
            refreshed = self.catalog_dir is not None and (self.catalog_dir / "offers.csv").is_file()
            self._catalog = load_catalog(self.catalog_dir if refreshed else None)
        return self._catalog

    def pricer(self) -> Pricer:
        if self._pricer is None:
            self._pricer = Pricer(self.catalog(), self.target)
        return self._pricer

    def reload(self) -> None:
        """After a catalog update: the next price uses the new catalog."""
        self._catalog = None
        self._pricer = None

    def stale_warning(self) -> str | None:
        return self.catalog().stale_warning(datetime.fromtimestamp(self.clock(), UTC).date())

    # Views ---------------------------------------------------------------------------------------
    def annotate(self, views: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Each resource's cost so far (USD on the reference target) in ``status.cost``."""
        totals = self.records.totals(v["uid"] for v in views if "uid" in v)
        for view in views:
            if view.get("uid") in totals:
                view["status"]["cost"] = round(totals[view["uid"]], 6)
                view["status"]["cost_target"] = str(self.target)
        return views

    # Quotes --------------------------------------------------------------------------------------
    def quote(self, request: QuoteRequest, limit: int | None = 20) -> builtins.list[QuoteOption]:
        return quote(self.catalog(), request, limit=limit)

    def request_for(self, spec: ResourceSpec, **overrides: Any) -> QuoteRequest:
        """The resource request a spec makes: a job's resources x instances for its max_runtime (spot if it
        asks), an endpoint's minimum replicas for a month, a tuning job's trials, a batch transform's workers."""
        data = spec.model_dump(mode="json")
        kind = spec.KIND
        if kind == "TuningJob":
            template = data["template"]
            budget = data.get("budget") or {}
            trials = int(budget.get("max_trials") or 10)
            data = {**template, "instance_count": int(template.get("instance_count") or 1)}
            hours = trials * float(template.get("max_runtime") or 3600) / 3600
        elif kind == "Endpoint":
            variants = data.get("variants") or [{}]
            data = {**variants[0], "instance_count": max(1, int((variants[0].get("replicas") or {}).get("min", 1)))}
            hours = 730.0
        elif kind == "BatchTransformJob":
            data = {**data, "instance_count": int(data.get("workers") or 1)}
            hours = float(overrides.pop("hours", 1.0))
        elif kind == "TrainingJob":
            hours = float(data.get("max_runtime") or 3600) / 3600
        else:
            raise InvalidArgument(
                f"cannot quote a {kind}: give a TrainingJob, TuningJob, Endpoint or BatchTransformJob"
            )
        resources = Resources.model_validate(data.get("resources") or {})
        fields: dict[str, Any] = {
            "cpus": resources.cpus,
            "memory_gib": resources.memory / GIB,
            "gpus": resources.gpus,
            "nodes": int(data.get("instance_count") or 1),
            "hours": hours,
            "workload": "hosting" if kind == "Endpoint" else "training",
        }
        if kind == "TrainingJob" and not (data.get("spot") or {}).get("enabled", False):
            fields["purchase"] = ("on_demand", "spot", "commit_1y", "commit_3y")
        fields.update(overrides)
        return QuoteRequest(**fields)

    def quote_pipeline(self, pipeline: Pipeline, **overrides: Any) -> dict[str, Any]:
        """The cheapest expected plan for each step that runs a job (its resources for its timeout, 1 h when it
        has none), and their total. Register, deploy and batch steps are priced by what they start."""
        steps, total = [], 0.0
        for step in pipeline.steps:
            if step.type not in ("training", "processing"):
                continue
            data = step.model_dump(mode="json", by_alias=True)
            job = dict(data.get("job") or {}) if step.type == "training" else {
                k: data[k] for k in ("command", "entrypoint", "resources") if data.get(k) is not None
            }  # fmt: skip
            job = {**job, "name": step.name, "max_runtime": data.get("timeout") or job.get("max_runtime") or 3600}
            request = self.request_for(TrainingJob.model_validate(job), **overrides)
            best = self.quote(request, limit=1)[0]
            steps.append({"step": step.name, "request": asdict(request), "option": best})
            total += best.expected_cost
        if not steps:
            raise InvalidArgument(f"pipeline {pipeline.name!r} has no step that runs a job to quote")
        return {"pipeline": pipeline.name, "steps": steps, "total_expected_cost": total}

    # Report --------------------------------------------------------------------------------------
    def recommendations(self, window_days: float) -> builtins.list[Any]:
        since = self.clock() - window_days * 86400
        records = self.records.records(since=since)
        jobs = [r for r in self.store.list("TrainingJob") if r.updated_at >= since]
        endpoints = self.store.list("Endpoint")
        pricer = self.pricer()
        return (
            rightsizing(jobs, records, pricer, window_days)
            + commitments(endpoints, pricer)
            + idle_endpoints(endpoints, self.last_request(), pricer, self.clock(), IDLE_AFTER)
        )

    def report(self, window_days: float = 30.0) -> dict[str, Any]:
        if window_days <= 0:
            raise InvalidArgument("--since must be a positive duration, e.g. 30d")
        self.ledger.run_once()  # what runs now is in the report
        records = self.records.records(since=self.clock() - window_days * 86400)
        report = build_report(
            records, self.recommendations(window_days), self.catalog(), window_days=window_days, target=str(self.target)
        )
        report["catalog_warning"] = self.stale_warning()
        return report

    def settle(self) -> None:
        """A ledger pass now (a pricing problem is logged, never raised: costs are shown, not required)."""
        try:
            self.ledger.run_once()
        except Exception:
            log.exception("cost ledger pass failed")

    def start(self) -> None:
        self.ledger.start()

    def close(self) -> None:
        self.ledger.stop()
