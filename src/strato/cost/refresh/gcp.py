"""GCP Cloud Billing Catalog API -> Offer rows.

``GET https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?key=KEY`` (Compute Engine) answers
``{"skus": [...], "nextPageToken": "..."}`` (empty or absent on the last page). Each SKU prices one resource:
a vCPU-hour ("N2 Instance Core running in Americas"), a GiB-hour of memory ("N2 Instance Ram ..."), or a
GPU-hour ("Nvidia Tesla T4 GPU ..."), for its ``serviceRegions``, with ``category.usageType`` OnDemand or
Preemptible (Spot) and the price in ``pricingInfo[0].pricingExpression.tieredRates[].unitPrice`` as
``units`` (a string) + ``nanos``.

A machine type's hourly price is vCPUs x core rate + GiB x RAM rate (+ GPUs x GPU rate) of its series in
its region. The API names no machine types, so the types to price (their vCPUs, memory and GPUs) come from
the current catalog's GCP rows (``templates``). Shared-core types (e2-micro ...) bill a fraction of a vCPU
and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strato.cost.gpus import canonical_gpu
from strato.cost.offers import Offer
from strato.cost.refresh.common import MAX_PAGES, Fetch, Parsed, get_json, need
from strato.errors import Unavailable

COMPUTE_ENGINE = "6F81-5844-456A"
SKUS_URL = f"https://cloudbilling.googleapis.com/v1/services/{COMPUTE_ENGINE}/skus"
SOURCE = "GCP Cloud Billing Catalog API"
USAGE_TYPES = ("OnDemand", "Preemptible")
# Words in a description that mark a price that is not the plain per-hour rate of a predefined type.
NOT_PLAIN = ("custom", "sole tenancy", "extended", "commitment", "reserved", "dws", "premium", "licens", "calendar")
SPOT_PREFIXES = ("spot preemptible ", "preemptible ")
CORE_OR_RAM = re.compile(r"^(?P<family>.+?) (?P<resource>core|ram) running in ")
GPU = re.compile(r"^nvidia (?P<model>.+?) gpu( attached to .+?)? running in ")
# Description families whose first word is not the series name.
SERIES_BY_FAMILY = {"compute optimized": "c2", "memory-optimized": "m1", "memory optimized": "m1"}
SHARED_CORE = ("e2-micro", "e2-small", "e2-medium", "f1-micro", "g1-small")


def fetch_skus(fetch: Fetch, key: str) -> list[dict[str, Any]]:
    """Every Compute Engine SKU, following nextPageToken until it is empty."""
    skus: list[dict[str, Any]] = []
    token = ""
    tokens: set[str] = set()
    while True:
        params = {"key": key, "currencyCode": "USD", "pageSize": "5000"}
        if token:
            params["pageToken"] = token
        page = get_json(fetch, SKUS_URL, params)
        skus.extend(need(page, "skus", list, SOURCE))
        token = str(page.get("nextPageToken") or "")
        if not token:
            return skus
        if token in tokens or len(tokens) >= MAX_PAGES:
            raise Unavailable(f"{SOURCE}: paging does not end (page token {token!r} again); try again later")
        tokens.add(token)


def fetch_gcp(fetch: Fetch, key: str, regions: Iterable[str], templates: Iterable[Offer], as_of: str) -> Parsed:
    return price_machine_types(fetch_skus(fetch, key), templates, regions=regions, as_of=as_of)


@dataclass
class RateTable:
    """USD per unit-hour by (series or GPU model, resource, usage type, region)."""

    rates: dict[tuple[str, str, str, str], float] = field(default_factory=dict)

    def get(self, name: str, resource: str, usage: str, region: str) -> float | None:
        return self.rates.get((name, resource, usage, region))


def parse_skus(skus: Iterable[Mapping[str, Any]], result: Parsed) -> RateTable:
    table = RateTable()
    for sku in skus:
        category = sku.get("category") or {}
        usage = category.get("usageType")
        if category.get("resourceFamily") != "Compute" or usage not in USAGE_TYPES:
            result.skip("SKU not an on-demand or spot compute price (commitment, license, disk ...)")
            continue
        key = _resource(str(sku.get("description", "")))
        price = _unit_price(sku)
        if key is None or price is None:
            result.skip("SKU not a vCPU, memory or GPU rate of a predefined type")
            continue
        for region in sku.get("serviceRegions") or ():
            table.rates[(key[0], key[1], usage, region)] = price
    return table


def _resource(description: str) -> tuple[str, str] | None:
    """('n2', 'core') / ('n2', 'ram') / ('T4', 'gpu') from a SKU description, None for anything else."""
    text = description.lower()
    if any(word in text for word in NOT_PLAIN):
        return None
    for prefix in SPOT_PREFIXES:
        text = text.removeprefix(prefix)
    gpu = GPU.match(text)
    if gpu:
        canonical = canonical_gpu(gpu.group("model"))  # "tesla a100" -> A100-40GB, "h100 80gb" -> H100
        return (canonical, "gpu") if canonical else None
    match = CORE_OR_RAM.match(text)
    if match is None:
        return None
    family = match.group("family").removesuffix(" instance")
    series = SERIES_BY_FAMILY.get(family) or family.split(" ")[0]
    return series, match.group("resource")


def _unit_price(sku: Mapping[str, Any]) -> float | None:
    """The per-unit price of the first tier (startUsageAmount 0) of the SKU's current pricing."""
    try:
        expression = sku["pricingInfo"][0]["pricingExpression"]
        tiers = sorted(expression["tieredRates"], key=lambda t: float(t.get("startUsageAmount", 0)))
        unit = tiers[0]["unitPrice"]
        return int(unit.get("units") or 0) + int(unit.get("nanos") or 0) / 1e9
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def price_machine_types(
    skus: Iterable[Mapping[str, Any]], templates: Iterable[Offer], *, regions: Iterable[str], as_of: str
) -> Parsed:
    """One Offer per (machine type, region) whose vCPU, memory (and GPU) rates are all published.

    Rates are per series and region, so they cannot say which types a region offers: a type is priced in
    the regions where the current catalog has it, and every known type in a region the catalog lacks.
    """
    result = Parsed()
    table = parse_skus(skus, result)
    rows = list(templates)
    every_shape = {_shape(t): t for t in rows}
    for region in regions:
        shapes = {_shape(t): t for t in rows if t.region == region} or every_shape
        for template in shapes.values():
            if template.instance_type in SHARED_CORE:
                result.skip("shared-core machine type (not priced per vCPU)")
                continue
            on_demand = _hourly(table, template, "OnDemand", region)
            if on_demand is None:
                result.skip("no vCPU, memory or GPU rate for the type's series in the region")
                continue
            spot = _hourly(table, template, "Preemptible", region)
            result.offers.append(
                replace(
                    template,
                    cloud="gcp",
                    region=region,
                    service="vm",
                    workload="any",
                    on_demand=round(on_demand, 6),
                    spot=None if spot is None else round(spot, 6),
                    interruption_bucket=None,
                    source=SOURCE,
                    as_of=as_of,
                )
            )
    return result


def _shape(offer: Offer) -> tuple[str, str | None, int]:
    return offer.instance_type, offer.gpu_model, offer.gpu_count


def _hourly(table: RateTable, template: Offer, usage: str, region: str) -> float | None:
    series = template.instance_type.split("-")[0]
    core = table.get(series, "core", usage, region)
    ram = table.get(series, "ram", usage, region)
    if core is None or ram is None:
        return None
    price = template.vcpus * core + template.memory_gib * ram
    if template.gpu_count:
        gpu = table.get(template.gpu_model or "", "gpu", usage, region)
        if gpu is None:
            return None
        price += template.gpu_count * gpu
    return price
