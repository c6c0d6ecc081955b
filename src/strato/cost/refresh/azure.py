"""Azure Retail Prices API -> Offer rows.

``GET https://prices.azure.com/api/retail/prices?$filter=...`` answers ``{"Items": [...], "NextPageLink":
url-or-null}``, a page at a time; each item is one meter: ``armSkuName`` (Standard_D4s_v5), ``retailPrice``
(USD), ``unitOfMeasure`` ('1 Hour'), ``type`` (Consumption, DevTestConsumption, Reservation), ``meterName``
/ ``skuName`` (ending in 'Spot' or 'Low Priority' for the evictable meters) and ``productName`` (which says
'Windows' for the Windows meters). No auth.

The API gives prices only, not sizes: vCPUs, memory and GPUs of each size come from the current catalog's
Azure rows (``templates``); a size the catalog does not describe is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from strato.cost.offers import Offer
from strato.cost.refresh.common import MAX_PAGES, Fetch, Parsed, get_json, need
from strato.errors import Unavailable

RETAIL_URL = "https://prices.azure.com/api/retail/prices"
SOURCE = "Azure Retail Prices API"


def retail_filter(region: str) -> str:
    return f"serviceName eq 'Virtual Machines' and armRegionName eq '{region}' and priceType eq 'Consumption'"


def fetch_items(fetch: Fetch, region: str) -> list[dict[str, Any]]:
    """Every item of one region's VM prices, following NextPageLink until it is null."""
    url: str | None = RETAIL_URL
    params: dict[str, str] | None = {"$filter": retail_filter(region)}
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    while url:
        if url in seen or len(seen) >= MAX_PAGES:
            raise Unavailable(f"{SOURCE}: paging for {region} does not end (page {url} again); try again later")
        seen.add(url)
        page = get_json(fetch, url, params)
        items.extend(need(page, "Items", list, f"{SOURCE} ({region})"))
        url, params = page.get("NextPageLink") or None, None  # the next link carries the whole query
    return items


def fetch_azure(fetch: Fetch, regions: Iterable[str], templates: Iterable[Offer], as_of: str) -> Parsed:
    by_name = {t.instance_type.lower(): t for t in templates}
    result = Parsed()
    for region in regions:
        result.extend(parse_items(fetch_items(fetch, region), by_name, region=region, as_of=as_of))
    return result


@dataclass
class _Meters:
    name: str
    on_demand: float | None = None
    on_demand_since: str = ""
    spot: float | None = None
    low_priority: float | None = None


def parse_items(
    items: Iterable[Mapping[str, Any]], templates: Mapping[str, Offer], *, region: str, as_of: str
) -> Parsed:
    """One Offer per VM size from its pay-as-you-go, Spot and Low Priority Linux meters.

    ``templates`` maps lower-cased size names to a catalog row describing that size.
    """
    result = Parsed()
    sizes: dict[str, _Meters] = {}
    for item in items:
        reason = _drop_reason(item, region)
        if reason:
            result.skip(reason)
            continue
        name = str(item["armSkuName"])
        price = float(item["retailPrice"])
        meters = sizes.setdefault(name.lower(), _Meters(name))
        meter = f"{item.get('meterName', '')} {item.get('skuName', '')}"
        if "Spot" in meter:
            meters.spot = price if meters.spot is None else min(meters.spot, price)
        elif "Low Priority" in meter:
            meters.low_priority = price if meters.low_priority is None else min(meters.low_priority, price)
        elif str(item.get("effectiveStartDate", "")) >= meters.on_demand_since:
            # Several pay-as-you-go meters for one size: the newest one is the price today.
            meters.on_demand, meters.on_demand_since = price, str(item.get("effectiveStartDate", ""))
    for key, meters in sorted(sizes.items()):
        if meters.on_demand is None:
            result.skip("evictable price without a pay-as-you-go price")
            continue
        template = templates.get(key)
        if template is None:
            result.skip("size not in the current catalog (vCPUs and memory unknown)")
            continue
        # Spot replaced Low Priority for VMs; the Low Priority meter is the fallback where Spot is missing.
        spot = meters.spot if meters.spot is not None else meters.low_priority
        result.offers.append(
            replace(
                template,
                cloud="azure",
                region=region,
                service="vm",
                workload="any",
                on_demand=round(meters.on_demand, 6),
                spot=None if spot is None else round(spot, 6),
                interruption_bucket=None,
                source=SOURCE,
                as_of=as_of,
            )
        )
    return result


def _drop_reason(item: Mapping[str, Any], region: str) -> str | None:
    if item.get("serviceName", "Virtual Machines") != "Virtual Machines":
        return "other service"
    if item.get("type", "Consumption") != "Consumption":
        return "not pay-as-you-go (reservation or dev/test)"
    if "Windows" in str(item.get("productName", "")):
        return "Windows"
    if item.get("unitOfMeasure") != "1 Hour":
        return "not priced per hour"
    if item.get("armRegionName", region) != region:
        return "other region"
    if item.get("currencyCode", "USD") != "USD":
        return "not USD"
    if item.get("isPrimaryMeterRegion") is False:
        return "non-primary meter"
    if not item.get("armSkuName"):
        return "no armSkuName"
    try:
        if float(item.get("retailPrice") or 0) <= 0:
            return "zero price"
    except (TypeError, ValueError):
        return "zero price"
    return None
