"""Correctness proof of the optimizer: on randomized requests, quote()'s first option is the one a plain
Python loop over the whole catalog finds, on the shipped catalog and on the large public reference
catalogs (../shared/pricing-reference, read through catalog.read_skypilot_csv like any SkyPilot file).

The loop below is written from the pricing rules (QuoteRequest's documentation), not from quote.py: it
checks every offer and every purchase option one at a time. It uses the spot model's public functions,
which have their own proof (test_spot_model.py)."""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import random
from pathlib import Path
from typing import Any

import pytest

from strato.cost import spot_model
from strato.cost.catalog import Catalog, load_catalog
from strato.cost.gpus import resolve_gpu
from strato.cost.quote import QuoteRequest, quote
from strato.errors import InvalidArgument, NotFound

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "pricing-reference"
YEAR = 8760.0


# --- the brute force ------------------------------------------------------------------------------
def _fits(offer: Any, r: QuoteRequest, gpus: int, gpu: str | None) -> bool:
    if offer.vcpus < r.cpus or offer.memory_gib < r.memory_gib:
        return False
    if gpus == 0 and offer.gpu_count > 0:
        return False  # CPU asks run on CPU instances
    if gpus > 0 and (offer.gpu_count < gpus or offer.gpu_model is None or (gpu and offer.gpu_model != gpu)):
        return False
    if offer.service not in r.services or (offer.service != "vm" and offer.workload != r.workload):
        return False
    if r.clouds and offer.cloud not in r.clouds:
        return False
    return not (r.regions and offer.region not in r.regions)


def brute_force(catalog: Catalog, r: QuoteRequest, defaults: dict[str, float]) -> list[tuple[float, float, Any, str]]:
    """Every (cost, per-node price, offer, purchase) that is the cheapest, by a loop over every offer."""
    gpu = resolve_gpu(r.gpu_type) if r.gpu_type else None
    gpus = r.gpus or (1 if gpu else 0)
    interval = 0.0 if r.workload == "hosting" else r.checkpoint_interval_hours
    utilization = r.utilization if r.utilization is not None else (1.0 if r.workload == "hosting" else None)
    best: list[tuple[float, float, Any, str]] = []
    for offer in catalog.offers:
        if not _fits(offer, r, gpus, gpu):
            continue
        candidates: list[tuple[float, float, float, str, float]] = []  # cost, price, hours, purchase, rate
        if "on_demand" in r.purchase and offer.on_demand is not None:
            candidates.append((offer.on_demand * r.nodes * r.hours, offer.on_demand, r.hours, "on_demand", 0.0))
        if "spot" in r.purchase and offer.spot is not None:
            if offer.interruption_bucket:
                rate = spot_model.bucket_rate(offer.interruption_bucket)
            else:
                rate = defaults.get(offer.cloud, spot_model.default_rate(offer.cloud))
            rate *= r.nodes
            hours = spot_model.spot_expected_hours(r.hours, rate, interval, r.restart_hours, r.checkpoint_cost_hours)
            if math.isfinite(hours):
                candidates.append((offer.spot * r.nodes * hours, offer.spot, hours, "spot", rate))
        for years in (1, 3):
            if f"commit_{years}y" not in r.purchase or offer.on_demand is None:
                continue
            commitment = catalog.commitment(offer.cloud, offer.service, offer.family, years)
            if commitment is None:
                continue
            price = offer.on_demand * (1 - commitment.discount)
            billed = r.hours / utilization if utilization else math.ceil(r.hours / (years * YEAR)) * years * YEAR
            candidates.append((price * r.nodes * billed, price, r.hours, f"commit_{years}y", 0.0))
        for cost, price, hours, purchase, rate in candidates:
            if r.max_hourly is not None and price > r.max_hourly:
                continue
            if r.deadline_hours is not None:
                if purchase == "spot":
                    p = spot_model.completion_probability(
                        r.deadline_hours, r.hours, rate, interval, r.restart_hours, r.checkpoint_cost_hours
                    )
                else:
                    p = 1.0 if hours <= r.deadline_hours else 0.0
                if p < r.deadline_probability:
                    if purchase != "spot" or not r.on_demand_fallback or offer.on_demand is None:
                        continue
                    if r.max_hourly is not None and offer.on_demand > r.max_hourly:
                        continue
                    plan = spot_model.fallback_plan(
                        r.deadline_hours, r.hours, rate, interval, r.restart_hours, r.checkpoint_cost_hours
                    )
                    if plan is None:
                        continue
                    cost = (price * plan.spot_hours + offer.on_demand * plan.on_demand_hours) * r.nodes
                    purchase = "spot_then_on_demand"
            key = (cost, price)
            if not best or key < best[0][:2]:
                best = [(cost, price, offer, purchase)]
            elif key == best[0][:2]:
                best.append((cost, price, offer, purchase))
    return best


# --- randomized requests --------------------------------------------------------------------------
def random_request(
    rng: random.Random, catalog: Catalog, *, deadlines: bool = False
) -> tuple[QuoteRequest, dict[str, float]]:
    """A random request; ``deadlines``: always a deadline, on clouds without published rates, with
    assumed rates high enough that spot often misses it (the fallback plans' turn)."""
    offers = catalog.offers
    clouds = sorted({o.cloud for o in offers})
    fields: dict[str, Any] = {}
    if rng.random() < 0.4:
        gpu_offers = [o for o in offers if o.gpu_count]
        sample = rng.choice(gpu_offers)
        fields["gpu_type"] = rng.choice([sample.gpu_model, (sample.gpu_model or "").lower(), None])
        fields["gpus"] = rng.choice([1, 1, 2, 4, 8, sample.gpu_count])
        fields["cpus"] = rng.choice([1, 4, 8, 16, sample.vcpus])
        fields["memory_gib"] = rng.choice([4, 16, 64, sample.memory_gib])
    else:
        sample = rng.choice([o for o in offers if not o.gpu_count])
        cpus = rng.choice([0.5, 1, 2, 4, 8, sample.vcpus, sample.vcpus * 2])
        fields["cpus"] = cpus
        fields["memory_gib"] = round(cpus * rng.choice([1, 2, 4, 8]) * rng.uniform(0.7, 1.1), 2)
    fields["nodes"] = rng.choice([1, 1, 1, 2, 4])
    hours = rng.choice([0.5, 2, 6, 24, 48] if deadlines else [0.5, 2, 6, 24, 48, 200, 730])
    fields["hours"] = hours
    if rng.random() < 0.3:
        fields["clouds"] = tuple(rng.sample(clouds, rng.randint(1, len(clouds))))
    if rng.random() < 0.3:
        pool = sorted({o.region for o in offers if o.cloud in fields.get("clouds", clouds)})
        fields["regions"] = tuple(rng.sample(pool, min(len(pool), rng.randint(1, 4))))
    if rng.random() < 0.3:
        fields["services"] = rng.choice([("vm",), ("sagemaker", "vertex", "azureml"), ("vm", "vertex")])
    if rng.random() < 0.5:
        options = ["on_demand", "spot", "commit_1y", "commit_3y"]
        fields["purchase"] = tuple(rng.sample(options, rng.randint(1, 4)))
    fields["workload"] = rng.choice(["training", "training", "hosting"])
    if rng.random() < 0.25:
        fields["max_hourly"] = rng.choice([0.05, 0.2, 1.0, 5.0, 40.0])
    if rng.random() < 0.3:
        fields["utilization"] = rng.choice([0.1, 0.3, 0.6, 1.0])
    fields["checkpoint_interval_hours"] = rng.choice([None, None, 0.25, 1.0])
    fields["checkpoint_cost_hours"] = rng.choice([0.0, 0.0, 0.02])
    fields["restart_hours"] = rng.choice([0.05, 0.2])
    if deadlines:
        fields["clouds"], fields["regions"] = ("gcp", "azure"), None
        fields["purchase"] = rng.choice([("on_demand", "spot"), ("spot",), ("spot", "commit_1y")])
        fields["max_hourly"] = None
    if deadlines or rng.random() < 0.35:
        fields["deadline_hours"] = round(hours * rng.uniform(1.0, 1.6), 3)
        fields["deadline_probability"] = rng.choice([0.5, 0.9, 0.99])
        fields["on_demand_fallback"] = rng.random() < 0.6
    # Published rates are small; larger assumed ones make deadlines bite and fallback plans win.
    defaults = rng.choice([{}, {"gcp": 0.02, "azure": 0.05}, {"gcp": 0.3, "azure": 0.3}, {"gcp": 1.0, "azure": 2.0}])
    if deadlines:
        fields["on_demand_fallback"] = rng.random() < 0.8
        defaults = {"gcp": rng.choice([0.1, 0.5, 1.0]), "azure": rng.choice([0.1, 0.5, 2.0])}
    return QuoteRequest(**fields), defaults


def check(catalog: Catalog, seed: int, count: int, *, deadlines: bool = False) -> collections.Counter[str]:
    """Compare quote() with the brute force on ``count`` random requests; count the winning purchase options."""
    rng = random.Random(seed)
    answered: collections.Counter[str] = collections.Counter()
    for i in range(count):
        request, defaults = random_request(rng, catalog, deadlines=deadlines)
        best = brute_force(catalog, request, defaults)
        try:
            first = quote(catalog, request, limit=1, default_rates=defaults)[0]
        except InvalidArgument as exc:
            assert not best, f"request {i}: quote refused ({exc}) but the brute force found {best[0]} for {request}"
            continue
        assert best, f"request {i}: the brute force found nothing, quote found {first} for {request}"
        cost, price = best[0][:2]
        assert first.expected_cost == pytest.approx(cost, rel=1e-9), (i, request, first, best[0])
        assert first.hourly == pytest.approx(price * request.nodes, rel=1e-9), (i, request)
        assert any(first.offer == offer and first.purchase == purchase for *_, offer, purchase in best), (i, request)
        answered[first.purchase] += 1
    return answered


# --- catalogs -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> Catalog:
    try:
        return load_catalog()
    except NotFound as exc:
        pytest.skip(f"the shipped catalog is not there: {exc}")


def _aws_buckets(offers: list[Any]) -> list[Any]:
    """Give the AWS excerpt's rows their Spot Advisor bucket (Linux), so the published-rate path is tested too."""
    buckets: dict[tuple[str, str], str] = {}
    with (REFERENCE / "aws_spot_advisor_flat.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["os"] == "Linux":
                buckets[(row["region"], row["instance_type"])] = row["interruption_bucket"]
    return [dataclasses.replace(o, interruption_bucket=buckets.get((o.region, o.instance_type))) for o in offers]


@pytest.fixture(scope="module")
def reference() -> Catalog:
    files = {
        "gcp": ("gcp_vms_skypilot_bootstrap_20260402.csv", "2026-04-02"),
        "azure": ("azure_vms.csv", "2026-05-20"),
        "aws": ("aws_vms_EXCERPT_g6_only.csv", "2026-01-01"),
    }
    if not all((REFERENCE / name).is_file() for name, _ in files.values()):
        pytest.skip(f"the reference catalogs are not in {REFERENCE} (public data, not shipped with the project)")
    try:
        from strato.cost.catalog import read_skypilot_csv
    except ImportError:
        pytest.skip("strato.cost.catalog.read_skypilot_csv does not exist yet")
    offers: list[Any] = []
    for cloud, (name, as_of) in files.items():
        read = read_skypilot_csv(REFERENCE / name, cloud, as_of, warnings=[])
        offers.extend(_aws_buckets(read) if cloud == "aws" else read)
    try:  # the reference files carry no commitment discounts: borrow the shipped ones
        commitments = list(load_catalog().commitments)
    except NotFound:
        commitments = []
    return Catalog(offers=offers, commitments=commitments)


def test_the_shipped_catalog(shipped):
    winners = check(shipped, seed=1, count=300)
    assert sum(winners.values()) >= 150  # the generator asks mostly for things that exist
    assert {"on_demand", "spot", "commit_1y", "commit_3y"} <= set(winners)


def test_the_shipped_catalog_under_deadlines(shipped):
    winners = check(shipped, seed=3, count=120, deadlines=True)
    assert winners["spot_then_on_demand"] >= 5 and winners["spot"] >= 5


def test_the_reference_catalogs(reference):
    assert len(reference.offers) > 50_000
    winners = check(reference, seed=2, count=40)
    assert sum(winners.values()) >= 15
