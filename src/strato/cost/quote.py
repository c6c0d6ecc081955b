"""Quotes: every way to run a resource request (cloud, region, raw VM or managed service, purchase
option), priced for the whole run and ranked by expected cost.

On-demand costs hours x price. Spot costs its EXPECTED hours (``spot_model``: interruptions from the
catalog's Spot Advisor bucket or a stated default, lost work back to the last checkpoint, restarts) x
price; a gang of N nodes stops when any node is interrupted, so its rate is N x the node's. A commitment
costs on-demand x (1 - discount) for every hour of its term, so it pays only for work that keeps it busy:
a one-off run is billed the whole term; recurring work (``utilization``; endpoints default to always on)
is billed hours / utilization. A deadline keeps the options that finish in time with the asked
probability (spot: the seeded simulation of the same process) and, with ``on_demand_fallback``, prices
spot-then-on-demand plans that always finish in time.

The catalog is indexed once into numpy columns (``quote_index``); a quote is a few vector masks, one
model evaluation per distinct interruption rate, and a sort.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from strato.cost import spot_model
from strato.cost.gpus import resolve_gpu
from strato.cost.offers import Offer
from strato.cost.quote_checks import (
    check_constraints,
    check_request,
    describe_ask,
    impossible,
    no_deadline,
    no_purchase,
    not_offered,
    over_budget,
)
from strato.cost.quote_index import CatalogIndex, index_for
from strato.cost.quote_notes import notes_for
from strato.errors import InvalidArgument

PURCHASES = ("on_demand", "spot", "commit_1y", "commit_3y")
FALLBACK = "spot_then_on_demand"
LABELS = (*PURCHASES, FALLBACK)
HOURS_PER_YEAR = 8760.0

if TYPE_CHECKING:
    from strato.cost.catalog import Catalog


@dataclass(frozen=True)
class QuoteRequest:
    """One node's resources x ``nodes`` for ``hours`` of work, and the constraints on where and how to buy it."""

    cpus: float = 1
    memory_gib: float = 1
    gpus: int = 0
    gpu_type: str | None = None
    nodes: int = 1
    hours: float = 1.0  # work hours (uninterrupted)
    clouds: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    services: tuple[str, ...] = ("vm", "sagemaker", "vertex", "azureml")
    purchase: tuple[str, ...] = PURCHASES
    workload: str = "training"  # managed rows of this workload ("hosting" for endpoints)
    max_hourly: float | None = None  # per node
    deadline_hours: float | None = None
    deadline_probability: float = 0.9
    checkpoint_interval_hours: float | None = None  # None: no checkpoints (an interruption restarts from zero)
    restart_hours: float = 0.05  # time to get capacity back and restore
    on_demand_fallback: bool = True  # spot that cannot meet the deadline may fall back to on-demand
    checkpoint_cost_hours: float = 0.0  # time one checkpoint takes (the job's measured cost)
    utilization: float | None = None  # share of a commitment's term the work recurs over; None: training one-off,
    #                                   hosting always on (1.0)


@dataclass(frozen=True)
class QuoteOption:
    """One way to run the request: ``expected_cost`` is for the whole run (spot: its expected hours;
    commitments: the hours of the term they bill), ``p_deadline`` None when no deadline was asked."""

    offer: Offer
    purchase: str
    hourly: float  # for all nodes
    expected_hours: float
    expected_cost: float
    p_deadline: float | None
    interruptions_per_hour: float
    notes: tuple[str, ...]


@dataclass
class _Options:
    """Candidate options as parallel arrays (one entry per option)."""

    row: np.ndarray
    label: np.ndarray
    node_price: np.ndarray
    hours: np.ndarray
    cost: np.ndarray
    rate: np.ndarray
    p: np.ndarray  # NaN: no deadline

    @classmethod
    def join(cls, parts: list[_Options]) -> _Options:
        if not parts:
            empty = np.zeros(0)
            return cls(empty.astype(np.int64), empty.astype(np.int64), empty, empty, empty, empty, empty)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    def take(self, keep: np.ndarray) -> _Options:
        return _Options(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.row)


def _shape_mask(index: CatalogIndex, cpus: float, memory: float, gpus: int, gpu: str | None) -> np.ndarray:
    mask = (index.vcpus >= cpus - 1e-9) & (index.memory >= memory - 1e-9)
    if gpus == 0:
        return mask & (index.gpu_count == 0)  # a CPU workload is matched to CPU instances
    mask &= index.gpu_count >= gpus
    return mask & (index.gpu == index.code(index.gpu_models, gpu)) if gpu else mask & (index.gpu >= 0)


def _constraint_mask(index: CatalogIndex, request: QuoteRequest) -> np.ndarray:
    mask = index.member(index.service, index.services, request.services)
    vm = index.code(index.services, "vm")
    mask &= (index.service == vm) | (index.workload == index.code(index.workloads, request.workload))
    if request.clouds:
        mask &= index.member(index.cloud, index.clouds, request.clouds)
    if request.regions:
        mask &= index.member(index.region, index.regions, request.regions)
    return mask


def _utilization(request: QuoteRequest) -> float | None:
    if request.utilization is not None:
        return request.utilization
    return 1.0 if request.workload == "hosting" else None


def _spot_interval(request: QuoteRequest) -> float | None:
    # An endpoint keeps no work to lose: an interruption costs only the restart (interval 0 in the model).
    return 0.0 if request.workload == "hosting" else request.checkpoint_interval_hours


def _node_rates(index: CatalogIndex, rows: np.ndarray, defaults: Mapping[str, float] | None) -> np.ndarray:
    published = index.rate[rows]
    per_cloud = np.array([(defaults or {}).get(c, spot_model.default_rate(c)) for c in index.clouds], dtype=float)
    return np.where(np.isnan(published), per_cloud[index.cloud[rows]], published)


def _price(index: CatalogIndex, rows: np.ndarray, request: QuoteRequest, rates: np.ndarray) -> _Options:
    parts: list[_Options] = []
    hours, nodes = request.hours, request.nodes
    nan = np.full(len(rows), math.nan)

    def add(
        label: str, keep: np.ndarray, price: np.ndarray, run_hours: np.ndarray, billed: np.ndarray, rate: np.ndarray
    ) -> None:
        code = np.full(int(keep.sum()), LABELS.index(label))
        cost = price[keep] * nodes * billed[keep]
        parts.append(_Options(rows[keep], code, price[keep], run_hours[keep], cost, rate[keep], nan[keep]))

    flat = np.full(len(rows), float(hours))
    zero = np.zeros(len(rows))
    on_demand = index.on_demand[rows]
    if "on_demand" in request.purchase:
        add("on_demand", ~np.isnan(on_demand), on_demand, flat, flat, zero)
    if "spot" in request.purchase:
        spot = index.spot[rows]
        gang = rates * nodes  # any node's interruption stops a gang
        distinct, back = np.unique(gang, return_inverse=True)
        expected = np.array(
            [
                spot_model.spot_expected_hours(
                    hours, r, _spot_interval(request), request.restart_hours, request.checkpoint_cost_hours
                )
                for r in distinct
            ]
        )[back.reshape(-1)]
        add("spot", ~np.isnan(spot) & np.isfinite(expected), spot, expected, expected, gang)
    utilization = _utilization(request)
    for years in (1, 3):
        if f"commit_{years}y" not in request.purchase:
            continue
        committed = on_demand * (1 - index.discount[years][rows])
        term = years * HOURS_PER_YEAR
        billed = hours / utilization if utilization else math.ceil(hours / term) * term
        add(f"commit_{years}y", ~np.isnan(committed), committed, flat, np.full(len(rows), billed), zero)
    return _Options.join(parts)


def _hours(plan: spot_model.FallbackPlan | None, part: str) -> float:
    return math.nan if plan is None else float(getattr(plan, part))


def _apply_deadline(index: CatalogIndex, options: _Options, request: QuoteRequest) -> _Options:
    """Set P(finish by the deadline) on ``options`` (in place: a refusal message reads it) and keep what
    meets it; spot that does not may become a spot-then-on-demand plan."""
    deadline, target = request.deadline_hours, request.deadline_probability
    assert deadline is not None
    spot_code = LABELS.index("spot")
    options.p = np.where(options.hours <= deadline + 1e-9, 1.0, 0.0)
    is_spot = options.label == spot_code
    interval = _spot_interval(request)
    distinct, back = np.unique(options.rate[is_spot], return_inverse=True)
    chance = {
        r: spot_model.completion_probability(
            deadline, request.hours, r, interval, request.restart_hours, request.checkpoint_cost_hours
        )
        for r in distinct
    }
    if len(distinct):
        options.p[is_spot] = np.array([chance[r] for r in distinct])[back.reshape(-1)]
    meets = options.p >= target - 1e-12
    kept = options.take(meets)
    late_spot = options.take(is_spot & ~meets)
    if not request.on_demand_fallback or not len(late_spot):
        return kept
    od = index.on_demand[late_spot.row]
    if request.max_hourly is not None:
        od = np.where(od <= request.max_hourly, od, math.nan)
    plans = {
        r: spot_model.fallback_plan(
            deadline, request.hours, r, interval, request.restart_hours, request.checkpoint_cost_hours
        )
        for r in np.unique(late_spot.rate)
    }
    spot_hours = np.array([_hours(plans[r], "spot_hours") for r in late_spot.rate])
    od_hours = np.array([_hours(plans[r], "on_demand_hours") for r in late_spot.rate])
    cost = (late_spot.node_price * spot_hours + od * od_hours) * request.nodes
    ok = np.isfinite(cost)
    fallback = _Options(
        late_spot.row[ok],
        np.full(int(ok.sum()), LABELS.index(FALLBACK)),
        late_spot.node_price[ok],
        (spot_hours + od_hours)[ok],
        cost[ok],
        late_spot.rate[ok],
        np.ones(int(ok.sum())),
    )
    return _Options.join([kept, fallback])


def quote(
    catalog: Catalog,
    request: QuoteRequest,
    *,
    limit: int | None = None,
    default_rates: Mapping[str, float] | None = None,
) -> list[QuoteOption]:
    """Every feasible option for ``request``, cheapest expected cost first (then lowest hourly), at most
    ``limit``. ``default_rates`` sets the interruptions per node-hour assumed where a cloud publishes
    none (default: the worst Spot Advisor bucket's rate). Raises InvalidArgument naming what to change
    when nothing fits."""
    check_request(request, limit, PURCHASES)
    index = index_for(catalog)
    gpu = resolve_gpu(request.gpu_type) if request.gpu_type else None
    gpus = request.gpus or (1 if gpu else 0)
    check_constraints(index, request)
    ask = describe_ask(request.cpus, request.memory_gib, gpus, gpu)
    shape = _shape_mask(index, request.cpus, request.memory_gib, gpus, gpu)
    if not shape.any():
        raise InvalidArgument(impossible(index, request.cpus, request.memory_gib, gpus, gpu))
    allowed = shape & _constraint_mask(index, request)
    if not allowed.any():
        raise InvalidArgument(not_offered(index, shape, request, ask))
    rows = np.flatnonzero(allowed)
    rates = _node_rates(index, rows, default_rates)
    options = _price(index, rows, request, rates)
    if not len(options):
        raise InvalidArgument(no_purchase(index, shape, request, ask))
    if request.max_hourly is not None:
        within = options.node_price <= request.max_hourly + 1e-12
        if not within.any():
            cheapest = int(np.argmin(options.node_price))
            offer = index.offers[int(options.row[cheapest])]
            label = LABELS[int(options.label[cheapest])]
            raise InvalidArgument(over_budget(request.max_hourly, float(options.node_price[cheapest]), offer, label))
        options = options.take(within)
    if request.deadline_hours is not None:
        before = options
        options = _apply_deadline(index, options, request)
        if not len(options):
            raise InvalidArgument(no_deadline(index, before, request, LABELS))
    if limit is not None and len(options) > 4 * limit:
        # Only the cheapest ``limit`` (and their ties) need the full sort.
        options = options.take(options.cost <= np.partition(options.cost, limit - 1)[limit - 1])
    order = np.lexsort((options.label, options.row, options.node_price, options.cost))[:limit]
    return [_option(index, options, int(k), request, default_rates) for k in order]


def _option(
    index: CatalogIndex, options: _Options, k: int, request: QuoteRequest, defaults: Mapping[str, float] | None
) -> QuoteOption:
    row = int(options.row[k])
    offer = index.offers[row]
    purchase = LABELS[int(options.label[k])]
    p = float(options.p[k])
    return QuoteOption(
        offer=offer,
        purchase=purchase,
        hourly=float(options.node_price[k]) * request.nodes,
        expected_hours=float(options.hours[k]),
        expected_cost=float(options.cost[k]),
        p_deadline=None if math.isnan(p) else p,
        interruptions_per_hour=float(options.rate[k]),
        notes=notes_for(index, row, purchase, request, float(options.rate[k]), float(options.hours[k]), p, defaults),
    )


def cheapest_fit(
    catalog: Catalog,
    cpus: float,
    memory_gib: float,
    gpus: int = 0,
    gpu_type: str | None = None,
    *,
    cloud: str,
    region: str,
    service: str = "vm",
) -> Offer | None:
    """The cheapest on-demand offer in ``cloud``/``region`` that fits, or None (CPU asks get CPU instances)."""
    index = index_for(catalog)
    gpu = resolve_gpu(gpu_type) if gpu_type else None
    mask = _shape_mask(index, cpus, memory_gib, gpus or (1 if gpu else 0), gpu)
    mask &= index.cloud == index.code(index.clouds, cloud)
    mask &= index.region == index.code(index.regions, region)
    mask &= index.service == index.code(index.services, service)
    mask &= ~np.isnan(index.on_demand)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    best = rows[np.lexsort((rows, index.on_demand[rows]))[0]]
    return index.offers[int(best)]
