"""What a quote refuses, and the one-line messages that say what to change: bad numbers, unknown or
conflicting constraints, an ask no instance can hold, and which filter left nothing."""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from strato.errors import InvalidArgument

if TYPE_CHECKING:
    from strato.cost.offers import Offer
    from strato.cost.quote import QuoteRequest
    from strato.cost.quote_index import CatalogIndex

SERVICES = ("vm", "sagemaker", "vertex", "azureml")
WORKLOADS = ("training", "hosting")


def _fmt(value: float) -> str:
    return f"{value:g}"


def _listed(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def check_request(request: QuoteRequest, limit: int | None, purchases: tuple[str, ...]) -> None:
    """Numbers and names a quote cannot work with, each refused with what to write instead."""
    r = request
    if not r.hours > 0:
        raise InvalidArgument(f"hours must be positive (the work to run), got {_fmt(r.hours)}")
    if r.cpus < 0 or r.memory_gib < 0 or r.gpus < 0:
        raise InvalidArgument("cpus, memory_gib and gpus must not be negative")
    if r.nodes < 1:
        raise InvalidArgument(f"nodes must be at least 1, got {r.nodes}")
    if r.max_hourly is not None and not r.max_hourly > 0:
        raise InvalidArgument(f"max_hourly must be a positive price per node-hour, got {_fmt(r.max_hourly)}")
    if r.deadline_hours is not None and not r.deadline_hours > 0:
        raise InvalidArgument(f"deadline_hours must be positive, got {_fmt(r.deadline_hours)}")
    if not 0 < r.deadline_probability <= 1:
        raise InvalidArgument(f"deadline_probability must be in (0, 1], got {_fmt(r.deadline_probability)}")
    if r.checkpoint_interval_hours is not None and r.checkpoint_interval_hours < 0:
        raise InvalidArgument("checkpoint_interval_hours must not be negative (None: no checkpoints)")
    if r.restart_hours < 0 or r.checkpoint_cost_hours < 0:
        raise InvalidArgument("restart_hours and checkpoint_cost_hours must not be negative")
    if r.utilization is not None and not 0 < r.utilization <= 1:
        raise InvalidArgument(f"utilization must be in (0, 1], got {_fmt(r.utilization)}")
    if limit is not None and limit < 1:
        raise InvalidArgument(f"limit must be at least 1, got {limit}")
    if not r.purchase:
        raise InvalidArgument(f"purchase is empty; allow at least one of {_listed(purchases)}")
    for name in r.purchase:
        if name not in purchases:
            raise InvalidArgument(f"unknown purchase option {name!r}; use {_listed(purchases)}")
    if not r.services:
        raise InvalidArgument(f"services is empty; allow at least one of {_listed(SERVICES)}")
    for name in r.services:
        if name not in SERVICES:
            raise InvalidArgument(f"unknown service {name!r}; use {_listed(SERVICES)}")
    if r.workload not in WORKLOADS:
        raise InvalidArgument(f"unknown workload {r.workload!r}; use {_listed(WORKLOADS)}")


def _unknown(kind: str, name: str, known: tuple[str, ...]) -> InvalidArgument:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {_listed(close)}? " if close else ""
    shown = _listed(known[:12]) + (", ..." if len(known) > 12 else "")
    return InvalidArgument(f"unknown {kind} {name!r}; {hint}(the catalog has {shown})")


def check_constraints(index: CatalogIndex, request: QuoteRequest) -> None:
    """Unknown clouds and regions, and constraints that exclude each other (a region of another cloud,
    a managed service that no allowed cloud offers)."""
    for cloud in request.clouds or ():
        if cloud not in index.clouds:
            raise _unknown("cloud", cloud, index.clouds)
    allowed = set(request.clouds or index.clouds)
    for region in request.regions or ():
        if region not in index.region_clouds:
            raise _unknown("region", region, index.regions)
        owners = index.region_clouds[region]
        if not owners & allowed:
            raise InvalidArgument(
                f"conflicting constraints: region {region} is on {_listed(sorted(owners))}, but clouds="
                f"{_listed(request.clouds or ())}; add {sorted(owners)[0]} to clouds or drop the region"
            )
    if request.regions:
        allowed &= set().union(*(index.region_clouds[r] for r in request.regions))
    offered = {s: index.service_clouds.get(s, set()) for s in request.services}
    if not any(clouds & allowed for clouds in offered.values()):
        where = "; ".join(f"{s} on {_listed(sorted(c)) or 'no cloud in the catalog'}" for s, c in offered.items())
        limit = f"regions={_listed(request.regions)}" if request.regions else f"clouds={_listed(request.clouds or ())}"
        raise InvalidArgument(
            f"conflicting constraints: services={_listed(request.services)} ({where}) but {limit} allows "
            f"only {_listed(sorted(allowed))}; add a service offered there (vm runs everywhere)"
        )


def describe_ask(cpus: float, memory: float, gpus: int, gpu: str | None) -> str:
    accel = f"{gpus} x {gpu or 'any GPU'}, " if gpus else ""
    return f"{accel}{_fmt(cpus)} vCPUs, {_fmt(memory)} GiB"


def _names(index: CatalogIndex, rows: np.ndarray, most: int = 4) -> str:
    """A few instance types among ``rows``: raw VMs first (the names people know), one per cloud first."""
    vm = index.code(index.services, "vm")
    picked = [int(r) for r in rows if index.service[r] == vm] or [int(r) for r in rows]
    types = sorted({(index.offers[r].cloud, index.offers[r].instance_type) for r in picked})
    first: dict[str, str] = {}
    for cloud, name in types:
        first.setdefault(cloud, name)
    ordered = list(first.values()) + [n for _, n in types if n not in first.values()]
    return _listed(ordered[:most])


def _largest(index: CatalogIndex, pool: np.ndarray, column: np.ndarray) -> tuple[float, str]:
    top = float(column[pool].max())
    return top, _names(index, pool[column[pool] == top])


def impossible(index: CatalogIndex, cpus: float, memory: float, gpus: int, gpu: str | None) -> str:
    """The ask fits no instance at all: say the largest that exists for it."""
    if gpus:
        pool = np.flatnonzero(index.gpu == index.code(index.gpu_models, gpu)) if gpu else np.flatnonzero(index.gpu >= 0)
        label = gpu or "GPU"
        if not len(pool):
            return f"no instance in the price catalog has {label} GPUs (it has {_listed(index.gpu_models)})"
        count, names = _largest(index, pool, index.gpu_count)
        if count < gpus:
            model = gpu or index.gpu_models[int(index.gpu[pool[index.gpu_count[pool] == count][0]])]
            return f"no instance has {gpus} {label} GPUs; the largest is {count:g} x {model} ({names})"
        pool = pool[index.gpu_count[pool] >= gpus]
        prefix, scope = f"no instance with {gpus} x {label} has", f"with {gpus} x {label}"
    else:
        pool = np.flatnonzero(index.gpu_count == 0)
        prefix, scope = "no CPU instance has", "among CPU instances"
        if not len(pool):
            return "the price catalog has no CPU instances; ask for GPUs"
    top_cpus, cpu_names = _largest(index, pool, index.vcpus)
    top_memory, memory_names = _largest(index, pool, index.memory)
    if cpus > top_cpus:
        return f"{prefix} {_fmt(cpus)} vCPUs; the largest {scope} has {top_cpus:g} vCPUs ({cpu_names})"
    if memory > top_memory:
        return f"{prefix} {_fmt(memory)} GiB of memory; the largest {scope} has {top_memory:g} GiB ({memory_names})"
    enough = pool[index.vcpus[pool] >= cpus]
    most, names = _largest(index, enough, index.memory)
    return (
        f"{prefix} {_fmt(cpus)} vCPUs and {_fmt(memory)} GiB together; with {_fmt(cpus)}+ vCPUs {scope} the most "
        f"memory is {most:g} GiB ({names})"
    )


def _scope(request: QuoteRequest) -> str:
    parts = []
    if request.clouds:
        parts.append(f"clouds={_listed(request.clouds)}")
    if request.regions:
        parts.append(f"regions={_listed(request.regions)}")
    if set(request.services) != set(SERVICES):
        parts.append(f"services={_listed(request.services)}")
    parts.append(f"workload={request.workload}")
    return ", ".join(parts)


def _places(index: CatalogIndex, rows: np.ndarray, most: int = 6) -> str:
    places = sorted({f"{index.offers[int(r)].cloud} {index.offers[int(r)].region}" for r in rows})
    return _listed(places[:most]) + (f" and {len(places) - most} more" if len(places) > most else "")


def not_offered(index: CatalogIndex, shape: np.ndarray, request: QuoteRequest, ask: str) -> str:
    return (
        f"no offer fits {ask} within {_scope(request)}; it is offered in {_places(index, np.flatnonzero(shape))}: "
        "widen clouds, regions or services"
    )


def no_purchase(index: CatalogIndex, shape: np.ndarray, request: QuoteRequest, ask: str) -> str:
    """Offers fit, but none is sold the allowed way (spot where there is no spot market, no commitment)."""
    where = _listed(request.regions) if request.regions else "the allowed regions"
    if request.purchase == ("spot",):
        elsewhere = shape & ~np.isnan(index.spot) & index.member(index.service, index.services, request.services)
        if request.clouds:
            elsewhere &= index.member(index.cloud, index.clouds, request.clouds)
        hint = f": spot for it is offered in {_places(index, np.flatnonzero(elsewhere))}" if elsewhere.any() else ""
        return (
            f"no spot offering for {ask} in {where} (on-demand only there); allow on_demand in purchase or choose "
            f"another region{hint}"
        )
    return f"no {_listed(request.purchase)} price for {ask} in {where}; allow another purchase option"


def over_budget(max_hourly: float, cheapest: float, offer: Offer, purchase: str) -> str:
    return (
        f"no option costs at most ${max_hourly:g}/h per node (max_hourly); the cheapest is ${cheapest:.4g}/h: "
        f"{offer.instance_type} ({offer.cloud} {offer.region}, {offer.service}, {purchase})"
    )


def no_deadline(index: CatalogIndex, options: Any, request: QuoteRequest, labels: tuple[str, ...]) -> str:
    """Nothing finishes in time: say why (the work is longer than the deadline, or spot is too risky and
    nothing safe is allowed) and which knob to turn."""
    deadline, target = request.deadline_hours or 0.0, request.deadline_probability
    head = f"no option finishes within {_fmt(deadline)} h with probability {_fmt(target)}"
    if request.hours > deadline:
        return f"{head}: the work alone takes {_fmt(request.hours)} h; raise deadline_hours"
    spot = options.label == labels.index("spot")
    if not spot.any():
        return f"{head}; allow other purchase options or raise deadline_hours"
    hints = [] if "on_demand" in request.purchase else ["allow on_demand"]
    if not request.on_demand_fallback:
        hints.append("set on_demand_fallback")
    else:
        interval = 0.0 if request.workload == "hosting" else request.checkpoint_interval_hours
        pieces = 0 if not interval or interval >= request.hours else math.ceil(request.hours / interval - 1e-9) - 1
        needed = request.hours + pieces * request.checkpoint_cost_hours + request.restart_hours
        hints.append(f"a move to on-demand needs deadline_hours >= {needed:.4g}")
    best = float(np.nanmax(options.p[spot]))
    return f"{head}: spot finishes in time with probability {best:.2f} at best; {', '.join(hints)}, or lower it"
