"""The catalog's records (an instance offer, a commitment discount, a Databricks DBU rate, an egress
price) and how one CSV row becomes one of them.

Rows are checked field by field: a bad row raises ``RowError`` naming the field, and the loader skips
it with a warning instead of failing the whole catalog. Prices are USD; instance prices are per
instance-hour.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from strato.cost.gpus import GPU_MEMORY_GIB, canonical_gpu

CLOUDS = ("aws", "gcp", "azure")
SERVICES = ("vm", "sagemaker", "vertex", "azureml")
MANAGED_SERVICE_CLOUD = {"sagemaker": "aws", "vertex": "gcp", "azureml": "azure"}
WORKLOADS = ("any", "training", "hosting")
KINDS = ("general", "compute", "memory", "gpu")
INTERRUPTION_BUCKETS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")  # AWS Spot Advisor, share per month
DBU_WORKLOADS = ("jobs", "all_purpose", "serving", "sql")
EGRESS_KINDS = ("internet", "inter_region")


@dataclass(frozen=True, slots=True)
class Offer:
    cloud: str
    region: str
    instance_type: str
    service: str  # "vm", or the managed service that bills it: "sagemaker" | "vertex" | "azureml"
    workload: str  # "any" for vm; "training" | "hosting" for managed rows
    kind: str
    vcpus: float
    memory_gib: float
    gpu_model: str | None  # canonical (strato.cost.gpus)
    gpu_count: int
    gpu_memory_gib: float  # per GPU
    on_demand: float | None  # USD per instance-hour; the loader never keeps a row without it
    spot: float | None  # None: no spot offering for this row
    interruption_bucket: str | None  # AWS Spot Advisor bucket; None where the cloud publishes none
    source: str
    as_of: str  # ISO date

    @property
    def family(self) -> str:
        return instance_family(self.cloud, self.instance_type)

    @property
    def key(self) -> tuple[str, str, str, str, str, str | None, int]:
        """What makes an offer unique: a GCP n1 machine is sold bare and with 1, 2 or 4 T4s attached."""
        return self.cloud, self.region, self.instance_type, self.service, self.workload, self.gpu_model, self.gpu_count


@dataclass(frozen=True)
class Commitment:
    cloud: str
    service: str
    family: str  # "*" = any family of that cloud and service
    term_years: int  # 1 | 3
    discount: float  # off the on-demand price, 0..1
    source: str
    as_of: str


@dataclass(frozen=True)
class DbuRate:
    cloud: str
    workload: str  # "jobs" | "all_purpose" | "serving" | "sql"
    tier: str  # "standard" | "premium" | "enterprise"
    usd_per_dbu: float
    dbu_per_vcpu_hour: float  # approximation: DBUs a cluster burns per vCPU-hour of its VMs
    source: str
    as_of: str


@dataclass(frozen=True)
class EgressPrice:
    cloud: str
    kind: str  # "internet" | "inter_region"
    usd_per_gb: float
    source: str
    as_of: str


class RowError(ValueError):
    """A CSV row that cannot become a record; the message names the field and what is wrong with it."""


def instance_family(cloud: str, instance_type: str) -> str:
    """The family a commitment discount is quoted for: m5 (also ml.m5.xlarge), n2, NC, ..."""
    if cloud == "aws":
        return instance_type.removeprefix("ml.").split(".")[0]
    if cloud == "azure":
        match = re.match(r"(?:Standard_)?([A-Za-z]+)", instance_type)
        return match.group(1).upper() if match else instance_type
    return instance_type.split("-")[0]


def guess_kind(cloud: str, instance_type: str, gpu_count: int) -> str:
    """general / compute / memory / gpu from the naming conventions, for price files that do not say."""
    if gpu_count > 0:
        return "gpu"
    family = instance_family(cloud, instance_type)
    if cloud == "aws":
        compute, memory = family.startswith("c"), family.startswith(("r", "x", "z", "u-"))
    elif cloud == "azure":
        compute, memory = family.startswith("F"), family.startswith(("E", "M", "G"))
    else:
        compute = "highcpu" in instance_type or family.startswith(("c2", "c3", "c4", "h3", "h4"))
        memory = "mem" in instance_type or family.startswith(("m1", "m2", "m3", "m4", "x4"))  # highmem, megamem
    return "compute" if compute else "memory" if memory else "general"


# --- one CSV row -> one record -------------------------------------------------------------------


def _text(row: Mapping[str, str | None], name: str, allowed: Collection[str] | None = None) -> str:
    value = (row.get(name) or "").strip()
    if not value:
        raise RowError(f"{name} is empty")
    if allowed is not None and value not in allowed:
        raise RowError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return value


def _number(row: Mapping[str, str | None], name: str, *, minimum: float = 0.0, strict: bool = True) -> float | None:
    raw = (row.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RowError(f"{name} {raw!r} is not a number") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise RowError(f"{name} {raw!r} must be {'>' if strict else '>='} {minimum:g}")
    return value


def _required(row: Mapping[str, str | None], name: str, what: str, **kwargs: Any) -> float:
    value = _number(row, name, **kwargs)
    if value is None:
        raise RowError(f"no {what} ({name} is empty)")
    return value


def _as_of(row: Mapping[str, str | None]) -> str:
    value = _text(row, "as_of")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise RowError(f"as_of {value!r} is not an ISO date (YYYY-MM-DD)") from None
    return value


def offer_from_row(row: Mapping[str, str | None]) -> Offer:
    cloud = _text(row, "cloud", CLOUDS)
    service = _text(row, "service", SERVICES)
    if MANAGED_SERVICE_CLOUD.get(service, cloud) != cloud:
        raise RowError(f"service {service!r} is not sold on {cloud}")
    workload = _text(row, "workload", ("any",) if service == "vm" else ("training", "hosting"))
    count = _number(row, "gpu_count", strict=False) or 0.0
    if not count.is_integer():
        raise RowError(f"gpu_count {count:g} must be a whole number (fractional GPUs are not offers)")
    gpu_count = int(count)
    gpu_model = None
    if gpu_count:
        name = _text(row, "gpu_model")
        gpu_model = canonical_gpu(name)
        if gpu_model is None:
            raise RowError(f"gpu_model {name!r} is not a GPU Strato knows (strato.cost.gpus)")
    kind = _text(row, "kind", ("gpu",) if gpu_count else KINDS[:3])
    bucket = (row.get("interruption_bucket") or "").strip() or None
    if bucket is not None and bucket not in INTERRUPTION_BUCKETS:
        raise RowError(f"interruption_bucket {bucket!r} is not one of {', '.join(INTERRUPTION_BUCKETS)}")
    return Offer(
        cloud=cloud,
        region=_text(row, "region"),
        instance_type=_text(row, "instance_type"),
        service=service,
        workload=workload,
        kind=kind,
        vcpus=_required(row, "vcpus", "vCPU count"),
        memory_gib=_required(row, "memory_gib", "memory size"),
        gpu_model=gpu_model,
        gpu_count=gpu_count,
        gpu_memory_gib=_number(row, "gpu_memory_gib", strict=False) or 0.0,
        on_demand=_required(row, "on_demand", "on-demand price"),
        spot=_number(row, "spot"),
        interruption_bucket=bucket,
        source=_text(row, "source"),
        as_of=_as_of(row),
    )


def commitment_from_row(row: Mapping[str, str | None]) -> Commitment:
    discount = _required(row, "discount", "discount")
    if discount >= 1:
        raise RowError(f"discount {discount:g} must be a fraction below 1 (0.37 for 37%)")
    term = _required(row, "term_years", "term")
    if term not in (1, 3):
        raise RowError(f"term_years {term:g} must be 1 or 3")
    return Commitment(
        cloud=_text(row, "cloud", CLOUDS),
        service=_text(row, "service", SERVICES),
        family=_text(row, "family"),
        term_years=int(term),
        discount=discount,
        source=_text(row, "source"),
        as_of=_as_of(row),
    )


def dbu_rate_from_row(row: Mapping[str, str | None]) -> DbuRate:
    return DbuRate(
        cloud=_text(row, "cloud", CLOUDS),
        workload=_text(row, "workload", DBU_WORKLOADS),
        tier=_text(row, "tier"),
        usd_per_dbu=_required(row, "usd_per_dbu", "price per DBU"),
        dbu_per_vcpu_hour=_required(row, "dbu_per_vcpu_hour", "DBU rate per vCPU-hour"),
        source=_text(row, "source"),
        as_of=_as_of(row),
    )


def egress_from_row(row: Mapping[str, str | None]) -> EgressPrice:
    return EgressPrice(
        cloud=_text(row, "cloud", CLOUDS),
        kind=_text(row, "kind", EGRESS_KINDS),
        usd_per_gb=_required(row, "usd_per_gb", "price per GB", strict=False),
        source=_text(row, "source"),
        as_of=_as_of(row),
    )


def skypilot_to_offer_row(row: Mapping[str, str], cloud: str, source: str, as_of: str) -> dict[str, str]:
    """A SkyPilot-format catalog row (InstanceType, vCPUs, MemoryGiB, AcceleratorName, AcceleratorCount,
    GpuInfo, Region, Price, SpotPrice) in Strato's columns, for offer_from_row to check like any other."""
    name = row.get("AcceleratorName") or ""
    try:
        count = float(row.get("AcceleratorCount") or 0)
    except ValueError:
        raise RowError(f"AcceleratorCount {row.get('AcceleratorCount')!r} is not a number") from None
    gpu = canonical_gpu(name) if count else None
    if count and gpu is None:
        raise RowError(f"accelerator {name!r} is not a GPU Strato knows" if name else "an unnamed accelerator (FPGA)")
    mib = re.search(r"SizeInMiB'?: (\d+)", row.get("GpuInfo") or "")  # AWS and GCP give the memory per GPU
    gpu_memory = int(mib.group(1)) / 1024 if mib else GPU_MEMORY_GIB.get(gpu or "", 0.0)
    return {
        "cloud": cloud, "region": row["Region"], "instance_type": row["InstanceType"], "service": "vm",
        "workload": "any", "kind": guess_kind(cloud, row["InstanceType"], int(count)), "vcpus": row["vCPUs"],
        "memory_gib": row["MemoryGiB"], "gpu_model": gpu or "", "gpu_count": f"{count:g}",
        "gpu_memory_gib": f"{gpu_memory:g}", "on_demand": row["Price"], "spot": row["SpotPrice"],
        "interruption_bucket": "", "source": source, "as_of": as_of,
    }  # fmt: skip


# Each catalog CSV: its file-name prefix, its columns and how a row becomes a record.
RECORD_TYPES: dict[str, tuple[type, Callable[[Mapping[str, str | None]], Any]]] = {
    "offers": (Offer, offer_from_row),
    "commitments": (Commitment, commitment_from_row),
    "dbu_rates": (DbuRate, dbu_rate_from_row),
    "egress": (EgressPrice, egress_from_row),
}


def columns(record_type: type) -> list[str]:
    return [f.name for f in fields(record_type)]


def record_to_row(record: Any) -> dict[str, str]:
    """The CSV row for a record (the inverse of the *_from_row functions): None is an empty cell."""
    out: dict[str, str] = {}
    for name in columns(type(record)):
        value = getattr(record, name)
        out[name] = "" if value is None else f"{value:.10g}" if isinstance(value, float) else str(value)
    return out
