"""AWS Spot Advisor data -> interruption buckets and spot prices for AWS rows.

``https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json`` (the data behind the Spot Instance
Advisor page, no auth) has ``ranges`` (``{"index": 0, "label": "<5%", ...}``: the share of instances
interrupted in the last month) and ``spot_advisor`` -> region -> OS -> instance type -> ``{"s": savings
over on-demand in %, "r": range index}``. Only Linux is read.

AWS publishes no spot price without credentials, so a row's spot price is its on-demand price less the
advisor's average saving: an estimate, which the row's source says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strato.cost.offers import Offer
from strato.cost.refresh.common import Fetch, get_json, need
from strato.jobs.spot import BUCKET_MONTHLY_SHARE

ADVISOR_URL = "https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json"
SOURCE = "AWS Spot Advisor"


@dataclass(frozen=True)
class Advice:
    savings_percent: float
    bucket: str  # one of strato.jobs.spot.BUCKET_MONTHLY_SHARE


@dataclass
class SpotAdvice:
    advice: dict[tuple[str, str], Advice]  # (region, instance type) -> advice
    skipped: Counter[str] = field(default_factory=Counter)  # entries dropped, by reason


def fetch_spot_advisor(fetch: Fetch) -> SpotAdvice:
    return parse_spot_advisor(get_json(fetch, ADVISOR_URL))


def parse_spot_advisor(doc: Any) -> SpotAdvice:
    labels = {}
    for position, entry in enumerate(need(doc, "ranges", list, SOURCE)):
        labels[int(entry.get("index", position))] = str(entry.get("label", "")).replace(" ", "")
    result = SpotAdvice({})
    for region, systems in need(doc, "spot_advisor", dict, SOURCE).items():
        for os_name, instances in (systems or {}).items():
            if os_name != "Linux":
                result.skipped["not Linux"] += 1
                continue
            for instance_type, entry in (instances or {}).items():
                bucket = labels.get(_int(entry.get("r")))
                if bucket not in BUCKET_MONTHLY_SHARE:
                    result.skipped["unknown interruption range"] += 1
                    continue
                savings = _float(entry.get("s"))
                if savings is None or not 0 <= savings < 100:
                    result.skipped["no savings figure"] += 1
                    continue
                result.advice[(region, instance_type)] = Advice(savings, bucket)
    return result


def apply_advice(offers: Iterable[Offer], advice: Mapping[tuple[str, str], Advice]) -> tuple[list[Offer], int]:
    """AWS VM rows with the advisor's bucket and estimated spot price; the count of rows it changed."""
    out: list[Offer] = []
    changed = 0
    for offer in offers:
        found = advice.get((offer.region, offer.instance_type))
        if offer.cloud != "aws" or offer.service != "vm" or found is None or offer.on_demand is None:
            out.append(offer)
            continue
        source = offer.source if SOURCE in offer.source else f"{offer.source}; spot estimated from {SOURCE}"
        spot = round(offer.on_demand * (1 - found.savings_percent / 100), 6)
        out.append(replace(offer, spot=spot, interruption_bucket=found.bucket, source=source))
        changed += 1
    return out, changed


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
