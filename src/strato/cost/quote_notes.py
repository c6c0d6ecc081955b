"""The notes on a quoted option: where its numbers come from (interruption rate and its source, the
checkpoint model, the commitment's break-even utilization, the deadline method), in words."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from strato.cost import spot_model

if TYPE_CHECKING:
    from strato.cost.quote import QuoteRequest
    from strato.cost.quote_index import CatalogIndex

HOURS_PER_YEAR = 8760.0


def _rate_note(index: CatalogIndex, row: int, rate: float, nodes: int, defaults: Mapping[str, float] | None) -> str:
    offer = index.offers[row]
    per_node = rate / nodes
    if not math.isnan(index.rate[row]):
        source = f"AWS Spot Advisor bucket {offer.interruption_bucket} a month"
    elif defaults and offer.cloud in defaults:
        source = f"{offer.cloud} publishes no rate; the configured default"
    else:
        source = (
            f"{offer.cloud} publishes no rate for {offer.instance_type}; assumed the worst Spot Advisor bucket "
            f"({spot_model.UNPUBLISHED_BUCKET} a month), configurable"
        )
    gang = f"; a gang of {nodes} stops when any node is interrupted: {rate:.2g}/h" if nodes > 1 else ""
    return f"interruptions: {per_node:.2g} per node-hour ({source}){gang}"


def _checkpoint_note(request: QuoteRequest) -> str:
    if request.workload == "hosting":
        return f"an endpoint loses no work to an interruption, only a restart of {request.restart_hours:g} h"
    if request.checkpoint_interval_hours is None:
        return "no checkpoints: an interruption restarts the run from zero"
    return (
        f"checkpoint every {request.checkpoint_interval_hours:g} h (cost {request.checkpoint_cost_hours:g} h); "
        f"restart {request.restart_hours:g} h"
    )


def _commit_note(index: CatalogIndex, row: int, years: int, request: QuoteRequest) -> str:
    commitment = index.commitments[years][row]
    assert commitment is not None
    discount = float(commitment.discount)
    term = years * HOURS_PER_YEAR
    if request.utilization is not None or request.workload == "hosting":
        use = request.utilization if request.utilization is not None else 1.0
        usage = f"this work keeps it {use:.0%} busy, billed {request.hours / use:.6g} h"
    else:
        billed = math.ceil(request.hours / term) * term
        usage = f"a one-off run of {request.hours:g} h is billed the whole term ({billed:.0f} h)"
    return (
        f"{years}-year commitment at {discount:.0%} off on-demand ({commitment.source}, {commitment.as_of}), billed "
        f"every hour of the term: it pays off at >= {1 - discount:.0%} utilization; {usage}"
    )


def notes_for(
    index: CatalogIndex,
    row: int,
    purchase: str,
    request: QuoteRequest,
    rate: float,
    hours: float,
    p: float,
    defaults: Mapping[str, float] | None,
) -> tuple[str, ...]:
    offer = index.offers[row]
    notes = [f"price: {offer.source}, {offer.as_of}"]
    if offer.service != "vm":
        notes.append(f"managed: {offer.service} {offer.workload}")
    if purchase in ("spot", "spot_then_on_demand"):
        notes.append(_rate_note(index, row, rate, request.nodes, defaults))
        notes.append(_checkpoint_note(request))
    if purchase == "spot":
        notes.append(
            f"expected {hours:.4g} h for {request.hours:g} h of work, {rate * hours:.2g} interruptions "
            "(Daly's model, strato.jobs.spot)"
        )
    if purchase.startswith("commit_"):
        notes.append(_commit_note(index, row, int(purchase[len("commit_")]), request))
    if request.deadline_hours is not None and purchase == "spot":
        notes.append(
            f"P(done within {request.deadline_hours:g} h) = {p:.3f} (seeded simulation of the same interruption "
            f"process, {spot_model.DEFAULT_RUNS} runs)"
        )
    if purchase == "spot_then_on_demand":
        assert request.deadline_hours is not None
        plan = spot_model.fallback_plan(
            request.deadline_hours,
            request.hours,
            rate,
            0.0 if request.workload == "hosting" else request.checkpoint_interval_hours,
            request.restart_hours,
            request.checkpoint_cost_hours,
        )
        assert plan is not None
        notes.append(
            f"spot alone finishes within {request.deadline_hours:g} h with probability below "
            f"{request.deadline_probability:g}: run on spot, move to on-demand (${offer.on_demand}/h per node) from "
            f"the last checkpoint when the time left is one restart plus the remaining work (not before hour "
            f"{plan.earliest_switch_hours:.4g}); moves in {plan.switch_probability:.0%} of simulated runs, "
            f"always finishes in time; expected {plan.spot_hours:.4g} h spot + {plan.on_demand_hours:.4g} h on-demand"
        )
    return tuple(notes)
