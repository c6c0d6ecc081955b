"""AWS Price List bulk offer files (one JSON per service and region) -> Offer rows.

An offer file has ``products`` (sku -> productFamily and attributes) and ``terms`` (``OnDemand`` and
``Reserved``: sku -> offerTermCode -> priceDimensions -> pricePerUnit.USD). Only on-demand terms are read:
commitment discounts live in the catalog's own commitments table, not here.

EC2 keeps Linux, shared tenancy, no pre-installed software and ``capacitystatus`` Used (the other values
are capacity-reservation accounting rows, not prices you can buy). SageMaker keeps ``ML Instance`` rows
of the Training and Hosting components. The price list names no GPU model, so it comes from the instance
family; a GPU family the catalog does not know is dropped rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from strato.cost.gpus import canonical_gpu
from strato.cost.offers import Offer, guess_kind
from strato.cost.refresh.common import Fetch, Parsed, get_json, need, quantity

OFFER_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{service}/current/{region}/index.json"

# The price list has a GPU count but no model: the family says which GPU it is, and its memory per GPU.
GPU_BY_FAMILY: dict[str, tuple[str, float]] = {
    "g4dn": ("T4", 16.0),
    "g5": ("A10G", 24.0),
    "g6": ("L4", 24.0),
    "gr6": ("L4", 24.0),
    "g6e": ("L40S", 48.0),
    "p3": ("V100", 16.0),
    "p3dn": ("V100", 32.0),
    "p4d": ("A100-40GB", 40.0),
    "p4de": ("A100-80GB", 80.0),
    "p5": ("H100", 80.0),
    "p5e": ("H200", 141.0),
    "p5en": ("H200", 141.0),
}
SAGEMAKER_WORKLOADS = {"training": "training", "hosting": "hosting"}
SAGEMAKER_USAGE = re.compile(r"-(Train|Host):ml\.")


def offer_url(service: str, region: str) -> str:
    return OFFER_URL.format(service=service, region=region)


def fetch_aws(fetch: Fetch, regions: Iterable[str], as_of: str) -> Parsed:
    """EC2 and SageMaker on-demand rows for each region, one offer file per service and region."""
    result = Parsed()
    for region in regions:
        result.extend(parse_ec2(get_json(fetch, offer_url("AmazonEC2", region)), region=region, as_of=as_of))
        result.extend(
            parse_sagemaker(get_json(fetch, offer_url("AmazonSageMaker", region)), region=region, as_of=as_of)
        )
    return result


def parse_ec2(doc: Any, *, region: str, as_of: str) -> Parsed:
    where = f"AWS price list AmazonEC2 {region}"
    products: Mapping[str, Any] = need(doc, "products", dict, where)
    on_demand: Mapping[str, Any] = need(need(doc, "terms", dict, where), "OnDemand", dict, where)
    source = _source("AmazonEC2", region, doc)
    result = Parsed()
    seen: set[str] = set()
    for sku, product in products.items():
        if not str(product.get("productFamily", "")).startswith("Compute Instance"):
            result.skip("not an instance (other product family)")
            continue
        attrs = product.get("attributes") or {}
        reason = _ec2_drop_reason(attrs, region)
        if reason:
            result.skip(reason)
            continue
        instance_type = str(attrs.get("instanceType", ""))
        price = hourly_on_demand(on_demand.get(sku))
        if price is None:
            result.skip("no on-demand hourly price")
            continue
        if instance_type in seen:
            result.skip("duplicate instance row")
            continue
        offer = _offer(attrs, instance_type, instance_type, region, "vm", "any", price, source, as_of, result)
        if offer is not None:
            seen.add(instance_type)
            result.offers.append(offer)
    return result


def _ec2_drop_reason(attrs: Mapping[str, Any], region: str) -> str | None:
    if attrs.get("operatingSystem") != "Linux":
        return "not Linux"
    if attrs.get("tenancy") != "Shared":
        return "not shared tenancy (dedicated or host)"
    if attrs.get("preInstalledSw", "NA") != "NA":
        return "pre-installed software"
    if attrs.get("capacitystatus", "Used") != "Used":
        return "capacity-reservation row"
    if attrs.get("licenseModel", "No License required") != "No License required":
        return "bring-your-own-license row"
    if attrs.get("marketoption", "OnDemand") != "OnDemand":
        return "not an on-demand market option"
    if attrs.get("regionCode", region) != region:
        return "other region"
    family = str(attrs.get("instanceFamily", ""))
    if "ASIC" in family or "FPGA" in family:
        return "accelerator not modelled (Inferentia, Trainium, FPGA)"
    return None


def parse_sagemaker(doc: Any, *, region: str, as_of: str) -> Parsed:
    where = f"AWS price list AmazonSageMaker {region}"
    products: Mapping[str, Any] = need(doc, "products", dict, where)
    on_demand: Mapping[str, Any] = need(need(doc, "terms", dict, where), "OnDemand", dict, where)
    source = _source("AmazonSageMaker", region, doc)
    result = Parsed()
    seen: set[tuple[str, str]] = set()
    for sku, product in products.items():
        attrs = product.get("attributes") or {}
        if product.get("productFamily") != "ML Instance":
            result.skip("not an instance (other product family)")
            continue
        workload = _sagemaker_workload(attrs)
        if workload is None:
            result.skip("not training or hosting (notebook, processing, batch ...)")
            continue
        if attrs.get("regionCode", region) != region:
            result.skip("other region")
            continue
        name = str(attrs.get("instanceName") or attrs.get("instanceType") or "")
        if not name.startswith("ml."):
            result.skip("no ml.* instance name")
            continue
        price = hourly_on_demand(on_demand.get(sku))
        if price is None:
            result.skip("no on-demand hourly price")
            continue
        if (name, workload) in seen:
            result.skip("duplicate instance row")
            continue
        offer = _offer(attrs, name, name[3:], region, "sagemaker", workload, price, source, as_of, result)
        if offer is not None:
            seen.add((name, workload))
            result.offers.append(offer)
    return result


def _sagemaker_workload(attrs: Mapping[str, Any]) -> str | None:
    component = str(attrs.get("component", "")).lower()
    if component:
        return SAGEMAKER_WORKLOADS.get(component)
    match = SAGEMAKER_USAGE.search(str(attrs.get("usagetype", "")))
    if match is None:
        return None
    return "training" if match.group(1) == "Train" else "hosting"


def hourly_on_demand(terms: Any) -> float | None:
    """The USD per hour of a sku's on-demand terms (offerTermCode -> priceDimensions), or None."""
    if not isinstance(terms, Mapping):
        return None
    for term in terms.values():
        for dimension in (term.get("priceDimensions") or {}).values():
            if dimension.get("unit") not in ("Hrs", "Hours"):
                continue
            usd = quantity((dimension.get("pricePerUnit") or {}).get("USD"))
            if usd:  # a zero price is a placeholder, not a free instance
                return usd
    return None


def _offer(
    attrs: Mapping[str, Any],
    instance_type: str,
    base_type: str,
    region: str,
    service: str,
    workload: str,
    price: float,
    source: str,
    as_of: str,
    result: Parsed,
) -> Offer | None:
    vcpus = quantity(attrs.get("vcpu") or attrs.get("vCpu"))
    memory = quantity(attrs.get("memory"))
    if not vcpus or not memory:
        result.skip("no vCPU or memory attribute")
        return None
    family = base_type.split(".")[0]
    gpu_count = int(quantity(attrs.get("gpu")) or 0)
    gpu_model: str | None = None
    gpu_memory = 0.0
    if gpu_count:
        known = GPU_BY_FAMILY.get(family)
        gpu_model = canonical_gpu(known[0]) if known else None
        if known is None or gpu_model is None:
            result.skip("GPU model not known to the catalog")
            return None
        gpu_memory = known[1]
    return Offer(
        cloud="aws",
        region=region,
        instance_type=instance_type,
        service=service,
        workload=workload,
        kind=_kind(attrs, base_type, gpu_count),
        vcpus=vcpus,
        memory_gib=memory,
        gpu_model=gpu_model,
        gpu_count=gpu_count,
        gpu_memory_gib=gpu_memory,
        on_demand=round(price, 6),
        spot=None,
        interruption_bucket=None,
        source=source,
        as_of=as_of,
    )


def _kind(attrs: Mapping[str, Any], base_type: str, gpu_count: int) -> str:
    if gpu_count:
        return "gpu"
    described = str(attrs.get("instanceFamily", "")).lower()  # "Compute optimized", "Memory optimized", ...
    for word in ("compute", "memory", "general"):
        if word in described:
            return word
    return guess_kind("aws", base_type, gpu_count)  # SageMaker rows do not say: the family letter does


def _source(service: str, region: str, doc: Mapping[str, Any]) -> str:
    published = str(doc.get("publicationDate", ""))[:10]
    return f"AWS Price List {service} {region}" + (f" published {published}" if published else "")
