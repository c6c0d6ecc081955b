"""Recommendations from what was measured: right-sizing (the smallest instance that fits a job's measured
CPU and peak memory with headroom), commitments for endpoints with steady load (on-demand vs 1- and
3-year terms, with the break-even utilization), and idle endpoints (replicas running with no requests,
where scale-to-zero saves their whole cost)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from strato.cost.ledger import CostRecord
from strato.cost.pricing import Pricer
from strato.specs.base import Resources
from strato.store.metadata import ResourceRecord

HEADROOM = 1.25  # room above the measured peak so a busier run still fits
HOURS_PER_MONTH = 730.0


@dataclass
class Recommendation:
    lever: str  # right-sizing | commitment | idle
    kind: str
    name: str
    message: str
    monthly_saving: float
    details: dict[str, Any] = field(default_factory=dict)


def rightsizing(
    jobs: list[ResourceRecord], records: list[CostRecord], pricer: Pricer, window_days: float
) -> list[Recommendation]:
    """For each finished job with measured usage: the instance its peak needs, and the saving per month at
    the rate it ran in the window."""
    hours_by_job: dict[str, float] = defaultdict(float)
    for row in records:
        if row.kind == "TrainingJob":
            hours_by_job[row.resource_uid] += row.seconds * row.units / 3600
    out = []
    for job in jobs:
        usage = job.status.get("usage") or {}
        if not usage.get("peak_memory") or "max_cpu_percent" not in usage or job.uid not in hours_by_job:
            continue
        asked = Resources.model_validate(job.spec.get("resources") or {})
        units = int(job.spec.get("instance_count") or 1)
        cpus = max(0.25, float(usage["max_cpu_percent"]) / 100 / units * HEADROOM)
        memory = int(int(usage["peak_memory"]) * HEADROOM)
        now = pricer.price(asked.cpus, asked.memory, asked.gpus)
        fits = pricer.price(min(cpus, asked.cpus), min(memory, asked.memory), asked.gpus)
        if now is None or fits is None or fits.hourly >= now.hourly:
            continue
        hours = hours_by_job[job.uid] / max(window_days, 1e-9) * 30.4
        saving = (now.hourly - fits.hourly) * hours
        out.append(
            Recommendation(
                "right-sizing", "TrainingJob", job.name,
                f"peak {usage['max_cpu_percent']:.0f}% CPU and {usage['peak_memory'] / 2**30:.2f} GiB fit "
                f"{fits.offer.instance_type} ({fits.hourly:.3f} $/h) instead of {now.offer.instance_type} "
                f"({now.hourly:.3f} $/h): ask for cpus {cpus:.2g}, memory {memory / 2**30:.2f}Gi",
                saving,
                {"from": now.offer.instance_type, "to": fits.offer.instance_type, "cpus": cpus, "memory": memory},
            )
        )  # fmt: skip
    return out


def commitments(endpoints: list[ResourceRecord], pricer: Pricer) -> list[Recommendation]:
    """Endpoints whose minimum replicas always run: what a 1- or 3-year commitment would save."""
    out = []
    for endpoint in endpoints:
        for variant in endpoint.spec.get("variants", []):
            steady = int((variant.get("replicas") or {}).get("min", 1))
            if steady < 1:
                continue
            resources = Resources.model_validate(variant.get("resources") or {})
            on_demand = pricer.price(resources.cpus, resources.memory, resources.gpus)
            if on_demand is None:
                continue
            best: tuple[float, int, float] | None = None
            for term in (1, 3):
                committed = pricer.hourly(on_demand.offer, f"commit_{term}y")
                if committed is None or committed >= on_demand.hourly:
                    continue
                saving = (on_demand.hourly - committed) * steady * HOURS_PER_MONTH
                if best is None or saving > best[0]:
                    best = (saving, term, committed)
            if best is None:
                continue
            saving, term, committed = best
            break_even = committed / on_demand.hourly
            out.append(
                Recommendation(
                    "commitment", "Endpoint", endpoint.name,
                    f"variant {variant.get('name')}: {steady} replica(s) always on; a {term}-year commitment on "
                    f"{on_demand.offer.instance_type} costs {committed:.3f} $/h vs {on_demand.hourly:.3f} on demand "
                    f"(pays off above {break_even:.0%} utilization)",
                    saving,
                    {"term_years": term, "break_even_utilization": break_even,
                     "instance": on_demand.offer.instance_type},
                )
            )  # fmt: skip
    return out


def idle_endpoints(
    endpoints: list[ResourceRecord], last_request: dict[str, float], pricer: Pricer, now: float, idle_after: float
) -> list[Recommendation]:
    """Endpoints with replicas but no request for ``idle_after`` seconds: scale to zero (replicas.min: 0)."""
    out = []
    for endpoint in endpoints:
        last = last_request.get(endpoint.name, endpoint.created_at)
        if now - last < idle_after:
            continue
        hourly = 0.0
        variants = {v.get("name"): v for v in endpoint.spec.get("variants", [])}
        for name, status in (endpoint.status.get("variants") or {}).items():
            resources = Resources.model_validate((variants.get(name) or {}).get("resources") or {})
            priced = pricer.price(resources.cpus, resources.memory, resources.gpus)
            if priced is not None:
                hourly += priced.hourly * len(status.get("replicas", []))
        if hourly <= 0:
            continue
        out.append(
            Recommendation(
                "idle", "Endpoint", endpoint.name,
                f"no request for {(now - last) / 3600:.1f} h while {hourly:.3f} $/h of replicas run; set "
                "replicas.min: 0 (serverless) to scale to zero when idle",
                hourly * HOURS_PER_MONTH,
                {"idle_hours": (now - last) / 3600},
            )
        )  # fmt: skip
    return out
