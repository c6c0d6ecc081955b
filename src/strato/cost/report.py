"""``strato cost report``: spend in a window, broken down, and what each of the five levers would save
(which instance, how it is bought, idle time, where it runs, the managed-service premium), with the top
recommendations. Monthly figures scale the window's spend to 30.4 days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from strato.cost.advice import Recommendation
from strato.cost.catalog import Catalog
from strato.cost.ledger import CostRecord
from strato.cost.offers import Offer

DAYS_PER_MONTH = 30.4
MANAGED = {"aws": "sagemaker", "gcp": "vertex", "azure": "azureml"}


def _offer_index(catalog: Catalog) -> dict[tuple[str, str, str], Offer]:
    return {(o.cloud, o.region, o.instance_type): o for o in catalog.offers if o.service == "vm"}


def _cheapest(catalog: Catalog, offer: Offer, cloud: str | None = None) -> Offer | None:
    """The cheapest on-demand VM (of ``cloud``, or any) in any region with at least this one's CPUs, memory
    and GPUs (the same GPU model)."""
    best = None
    for other in catalog.offers:
        if other.service != "vm" or other.on_demand is None or (cloud is not None and other.cloud != cloud):
            continue
        fits = (
            other.vcpus >= offer.vcpus
            and other.memory_gib >= offer.memory_gib
            and other.gpu_count >= offer.gpu_count
            and (offer.gpu_model is None or other.gpu_model == offer.gpu_model)
        )
        if fits and (best is None or other.on_demand < (best.on_demand or 0)):
            best = other
    return best


def _managed_premium(catalog: Catalog, offer: Offer, workload: str) -> float | None:
    """Managed price / VM price for the same instance (SageMaker's ml.*, Vertex AI, Azure ML), if listed."""
    for other in catalog.offers:
        if (
            other.cloud == offer.cloud and other.region == offer.region and other.service == MANAGED.get(offer.cloud)
            and other.workload == workload and other.instance_type.removeprefix("ml.") == offer.instance_type
            and other.on_demand and offer.on_demand
        ):  # fmt: skip
            return other.on_demand / offer.on_demand
    return None


def on_each_cloud(records: list[CostRecord], catalog: Catalog) -> dict[str, float | None]:
    """What the same run time would cost on demand on each cloud's cheapest fitting instance, and on
    Databricks (AWS VMs plus DBUs: jobs compute for jobs, model serving for endpoints). None: no instance
    of that cloud fits something that ran."""
    index = _offer_index(catalog)
    totals: dict[str, float | None] = {"aws": 0.0, "gcp": 0.0, "azure": 0.0, "databricks": 0.0}
    cheapest: dict[tuple[Offer, str], Offer | None] = {}
    for row in records:
        offer = index.get((row.cloud, row.region, row.instance_type))
        if offer is None:
            continue
        hours = row.seconds * row.units / 3600
        for cloud in ("aws", "gcp", "azure"):
            if (offer, cloud) not in cheapest:
                cheapest[(offer, cloud)] = _cheapest(catalog, offer, cloud)
            match, total = cheapest[(offer, cloud)], totals[cloud]
            totals[cloud] = None if match is None or total is None else total + (match.on_demand or 0.0) * hours
        dbu = catalog.dbu_rate("aws", "serving" if row.kind == "Endpoint" else "jobs")
        aws, current = cheapest[(offer, "aws")], totals["databricks"]
        if aws is None or dbu is None or current is None:
            totals["databricks"] = None
            continue
        dbus = dbu.usd_per_dbu * dbu.dbu_per_vcpu_hour * aws.vcpus  # $/h of DBUs on top of the VM
        totals["databricks"] = current + ((aws.on_demand or 0.0) + dbus) * hours
    return totals


def build_report(
    records: list[CostRecord],
    recommendations: list[Recommendation],
    catalog: Catalog,
    *,
    window_days: float,
    target: str,
) -> dict[str, Any]:
    scale = DAYS_PER_MONTH / max(window_days, 1e-9)
    total = sum(r.cost for r in records)
    by_kind: dict[str, float] = defaultdict(float)
    by_purchase: dict[str, float] = defaultdict(float)
    by_resource: dict[tuple[str, str], float] = defaultdict(float)
    by_label: dict[str, float] = defaultdict(float)
    by_model: dict[str, float] = defaultdict(float)
    spot_saving = region_saving = premium_avoided = 0.0
    where: dict[str, str] = {}
    index = _offer_index(catalog)
    cheapest_of: dict[Offer, Offer | None] = {}
    premium_of: dict[tuple[Offer, str], float | None] = {}
    for row in records:
        by_kind[row.kind] += row.cost
        by_purchase[row.purchase] += row.cost
        by_resource[(row.kind, row.name)] += row.cost
        for key, value in row.labels.items():
            by_label[f"{key}={value}"] += row.cost
        if row.model:
            by_model[row.model] += row.cost
        offer = index.get((row.cloud, row.region, row.instance_type))
        if offer is None or not row.hourly:
            continue
        if row.kind != "Endpoint" and row.purchase == "on_demand" and offer.spot:
            spot_saving += row.cost * (1 - offer.spot / row.hourly)
        if offer not in cheapest_of:
            cheapest_of[offer] = _cheapest(catalog, offer)
        cheapest = cheapest_of[offer]
        if cheapest is not None and cheapest.on_demand and cheapest.on_demand < row.hourly:
            region_saving += row.cost * (1 - cheapest.on_demand / row.hourly)
            where[row.instance_type] = f"{cheapest.instance_type} in {cheapest.cloud} {cheapest.region}"
        workload = "hosting" if row.kind == "Endpoint" else "training"
        if (offer, workload) not in premium_of:
            premium_of[(offer, workload)] = _managed_premium(catalog, offer, workload)
        premium = premium_of[(offer, workload)]
        if premium is not None and premium > 1:
            premium_avoided += row.cost * (premium - 1)
    by_lever: dict[str, float] = defaultdict(float)
    for rec in recommendations:
        by_lever[rec.lever] += rec.monthly_saving
    levers = [
        {"lever": "which instance (right-sizing)", "monthly_saving": by_lever["right-sizing"],
         "note": "the smallest instance that fits each job's measured peak with 25% headroom"},
        {"lever": "how you buy (spot, commitments)", "monthly_saving": spot_saving * scale + by_lever["commitment"],
         "note": "on-demand jobs at spot prices, and 1/3-year terms for always-on endpoints"},
        {"lever": "idle time (scale to zero)", "monthly_saving": by_lever["idle"],
         "note": "endpoints with replicas and no traffic"},
        {"lever": "where it runs (cloud and region)", "monthly_saving": region_saving * scale,
         "note": "the cheapest cloud and region with the same CPUs, memory and GPUs, on demand"},
        {"lever": "managed-service premium", "monthly_saving": premium_avoided * scale,
         "note": "what SageMaker / Vertex AI would add for the same instances (avoided by running them here)"},
    ]  # fmt: skip
    top = sorted(by_resource.items(), key=lambda item: -item[1])[:10]
    return {
        "window_days": window_days,
        "target": target,
        "total": total,
        "monthly": total * scale,
        "by_kind": dict(by_kind),
        "by_purchase": dict(by_purchase),
        "by_label": dict(by_label),
        "by_model": dict(by_model),
        "top": [{"kind": k, "name": n, "cost": c} for (k, n), c in top],
        "levers": sorted(levers, key=lambda lever: -float(lever["monthly_saving"])),
        "cheapest_elsewhere": where,
        "on_each_cloud": on_each_cloud(records, catalog),
        "recommendations": [asdict(r) for r in sorted(recommendations, key=lambda r: -r.monthly_saving)[:10]],
    }
