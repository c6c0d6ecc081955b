"""Quotes on a small hand-built catalog: ranking, spot economics, commitments, managed vs raw, nodes,
deadlines, and every refusal's message."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from strato.cost import quote_index, spot_model
from strato.cost.catalog import Catalog
from strato.cost.offers import Commitment, Offer
from strato.cost.quote import QuoteRequest, cheapest_fit, quote
from strato.errors import InvalidArgument


def offer(
    cloud: str,
    region: str,
    name: str,
    vcpus: float,
    memory: float,
    on_demand: float,
    spot: float | None = None,
    bucket: str | None = None,
    *,
    gpu: str | None = None,
    gpus: int = 0,
    service: str = "vm",
    workload: str = "any",
) -> Offer:
    return Offer(
        cloud=cloud,
        region=region,
        instance_type=name,
        service=service,
        workload=workload,
        kind="gpu" if gpus else "general",
        vcpus=vcpus,
        memory_gib=memory,
        gpu_model=gpu,
        gpu_count=gpus,
        gpu_memory_gib=80.0 if gpus else 0.0,
        on_demand=on_demand,
        spot=spot,
        interruption_bucket=bucket,
        source="test",
        as_of="2026-01-01",
    )


def commitment(cloud: str, service: str, family: str, years: int, discount: float) -> Commitment:
    return Commitment(cloud, service, family, years, discount, "test", "2026-01-01")


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        offers=[
            offer("aws", "us-east-1", "m5.2xlarge", 8, 32, 0.384, 0.12, ">20%"),
            offer("aws", "us-east-1", "m5.4xlarge", 16, 64, 0.768, 0.25, "<5%"),
            offer("aws", "eu-west-1", "m5.2xlarge", 8, 32, 0.428),  # no spot market here
            offer("aws", "us-east-1", "ml.m5.2xlarge", 8, 32, 0.461, 0.15, service="sagemaker", workload="training"),
            offer("aws", "us-east-1", "ml.m5.2xlarge", 8, 32, 0.461, service="sagemaker", workload="hosting"),
            offer("aws", "us-east-1", "g5.xlarge", 4, 16, 1.006, 0.35, "5-10%", gpu="A10G", gpus=1),
            offer("aws", "us-east-1", "p4d.24xlarge", 96, 1152, 32.77, 12.0, "5-10%", gpu="A100-40GB", gpus=8),
            offer("aws", "us-east-1", "p5.48xlarge", 192, 2048, 98.32, 40.0, "10-15%", gpu="H100", gpus=8),
            offer("gcp", "us-central1", "n2-standard-8", 8, 32, 0.388, 0.09),
            offer("gcp", "us-central1", "n2-standard-8", 8, 32, 0.446, service="vertex", workload="training"),
            offer("gcp", "us-central1", "g2-standard-4", 4, 16, 0.71, 0.28, gpu="L4", gpus=1),
            offer("gcp", "us-central1", "a3-highgpu-8g", 208, 1872, 88.49, 30.0, gpu="H100", gpus=8),
            offer("azure", "eastus", "Standard_D8s_v5", 8, 32, 0.384, 0.05),
        ],
        commitments=[
            commitment("aws", "vm", "*", 1, 0.40),
            commitment("aws", "vm", "*", 3, 0.60),
            commitment("gcp", "vm", "n2", 1, 0.37),
            commitment("gcp", "vm", "n2", 3, 0.55),
            commitment("aws", "sagemaker", "*", 1, 0.30),
        ],
    )


def names(options) -> list[tuple[str, str, str]]:
    return [(o.offer.instance_type, o.offer.service, o.purchase) for o in options]


# --- ranking ---------------------------------------------------------------------------------------
def test_ranked_by_expected_cost_then_hourly(catalog):
    options = quote(catalog, QuoteRequest(cpus=8, memory_gib=32, hours=6))
    keys = [(o.expected_cost, o.hourly) for o in options]
    assert keys == sorted(keys)
    assert names(options)[0] == ("Standard_D8s_v5", "vm", "spot")
    # every cloud, both sizes that fit, raw and managed, every purchase option with a price
    assert {o.offer.cloud for o in options} == {"aws", "gcp", "azure"}
    assert ("m5.4xlarge", "vm", "on_demand") in names(options)
    assert ("ml.m5.2xlarge", "sagemaker", "spot") in names(options)
    assert ("n2-standard-8", "vm", "commit_3y") in names(options)
    assert all(o.p_deadline is None for o in options)


def test_cpu_asks_are_matched_to_cpu_instances_and_limit_cuts_the_list(catalog):
    options = quote(catalog, QuoteRequest(cpus=2, memory_gib=8), limit=3)
    assert len(options) == 3
    assert all(o.offer.gpu_count == 0 for o in quote(catalog, QuoteRequest(cpus=2, memory_gib=8)))


def test_on_demand_is_hours_times_price(catalog):
    option = next(
        o
        for o in quote(catalog, QuoteRequest(cpus=8, memory_gib=32, hours=6, regions=("eu-west-1",)))
        if o.purchase == "on_demand"
    )
    assert (option.hourly, option.expected_hours) == (0.428, 6.0)
    assert option.expected_cost == pytest.approx(0.428 * 6)
    assert option.interruptions_per_hour == 0


# --- spot -----------------------------------------------------------------------------------------
def test_spot_costs_its_expected_hours_under_the_published_rate(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=6, clouds=("aws",), services=("vm",), purchase=("spot",))
    (option,) = quote(catalog, request)[:1]
    rate = spot_model.bucket_rate(">20%")
    expected = spot_model.spot_expected_hours(6, rate, None, 0.05)
    assert option.interruptions_per_hour == pytest.approx(rate)
    assert option.expected_hours == pytest.approx(expected) and expected > 6
    assert option.expected_cost == pytest.approx(0.12 * expected)
    assert any("Spot Advisor bucket >20%" in n for n in option.notes)
    assert any("restarts the run from zero" in n for n in option.notes)


def test_unpublished_rates_use_a_stated_default_that_can_be_configured(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=6, clouds=("gcp",), services=("vm",), purchase=("spot",))
    option = quote(catalog, request)[0]
    assert option.interruptions_per_hour == pytest.approx(spot_model.default_rate("gcp"))
    assert any("gcp publishes no rate" in n and "configurable" in n for n in option.notes)
    stormy = quote(catalog, request, default_rates={"gcp": 0.5})[0]
    assert stormy.interruptions_per_hour == 0.5
    assert stormy.expected_hours == pytest.approx(spot_model.spot_expected_hours(6, 0.5, None, 0.05))


def test_checkpoints_shorten_the_expected_spot_run(catalog):
    base = QuoteRequest(cpus=8, memory_gib=32, hours=6, clouds=("gcp",), services=("vm",), purchase=("spot",))
    none = quote(catalog, base, default_rates={"gcp": 0.5})[0]
    every_half_hour = quote(catalog, replace(base, checkpoint_interval_hours=0.5), default_rates={"gcp": 0.5})[0]
    assert every_half_hour.expected_hours < none.expected_hours
    assert every_half_hour.expected_hours == pytest.approx(spot_model.spot_expected_hours(6, 0.5, 0.5, 0.05))


def test_high_interruption_rates_can_make_on_demand_the_cheapest(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=24, clouds=("azure",), purchase=("on_demand", "spot"))
    assert quote(catalog, request)[0].purchase == "spot"
    assert quote(catalog, request, default_rates={"azure": 1.0})[0].purchase == "on_demand"


# --- nodes ----------------------------------------------------------------------------------------
def test_nodes_multiply_the_price_and_the_gang_interruption_rate(catalog):
    one = QuoteRequest(gpus=8, gpu_type="H100", hours=10, clouds=("aws",), purchase=("spot",))
    single = quote(catalog, one)[0]
    four = quote(catalog, replace(one, nodes=4))[0]
    assert four.hourly == pytest.approx(4 * single.hourly)
    assert four.interruptions_per_hour == pytest.approx(4 * single.interruptions_per_hour)
    assert four.expected_hours == pytest.approx(
        spot_model.spot_expected_hours(10, 4 * spot_model.bucket_rate("10-15%"), None, 0.05)
    )
    assert four.expected_cost == pytest.approx(four.hourly * four.expected_hours)
    assert any("gang of 4" in n for n in four.notes)


def test_max_hourly_is_per_node(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, nodes=10, max_hourly=0.1)
    assert {(o.offer.instance_type, o.purchase) for o in quote(catalog, request)} == {
        ("Standard_D8s_v5", "spot"),
        ("n2-standard-8", "spot"),
    }


# --- managed vs raw -------------------------------------------------------------------------------
def test_services_and_workload_choose_raw_or_managed_rows(catalog):
    raw = quote(catalog, QuoteRequest(cpus=8, memory_gib=32, services=("vm",)))
    assert {o.offer.service for o in raw} == {"vm"}
    managed = quote(catalog, QuoteRequest(cpus=8, memory_gib=32, services=("sagemaker", "vertex")))
    assert {(o.offer.service, o.offer.workload) for o in managed} == {("sagemaker", "training"), ("vertex", "training")}
    assert all(any(n.startswith("managed:") for n in o.notes) for o in managed)
    hosting = quote(catalog, QuoteRequest(cpus=8, memory_gib=32, services=("sagemaker",), workload="hosting"))
    assert {(o.offer.workload, o.purchase) for o in hosting} == {("hosting", "on_demand"), ("hosting", "commit_1y")}


def test_managed_costs_its_premium(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=10, clouds=("gcp",), purchase=("on_demand",))
    by_service = {o.offer.service: o.expected_cost for o in quote(catalog, request)}
    assert by_service["vertex"] == pytest.approx(4.46) and by_service["vm"] == pytest.approx(3.88)


# --- commitments ----------------------------------------------------------------------------------
def test_a_one_off_run_pays_the_whole_commitment_term(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=6, clouds=("gcp",), services=("vm",), purchase=("commit_1y",))
    (option,) = quote(catalog, request)
    assert option.hourly == pytest.approx(0.388 * (1 - 0.37))
    assert option.expected_hours == 6
    assert option.expected_cost == pytest.approx(0.388 * 0.63 * 8760)
    note = next(n for n in option.notes if "commitment" in n)
    assert "pays off at >= 63% utilization" in note and "billed the whole term (8760 h)" in note


def test_recurring_work_pays_for_the_hours_it_keeps_the_commitment_busy(catalog):
    base = QuoteRequest(
        cpus=8, memory_gib=32, hours=730, clouds=("gcp",), services=("vm",), purchase=("on_demand", "commit_3y")
    )
    always_on = quote(catalog, replace(base, utilization=1.0))
    assert always_on[0].purchase == "commit_3y"
    assert always_on[0].expected_cost == pytest.approx(0.388 * 0.45 * 730)
    spiky = quote(catalog, replace(base, hours=146, utilization=0.2))
    assert spiky[0].purchase == "on_demand"  # 20% busy is below the 45% break-even
    commit = next(o for o in spiky if o.purchase == "commit_3y")
    assert commit.expected_cost == pytest.approx(0.388 * 0.45 * 730)
    assert any("keeps it 20% busy" in n for n in commit.notes)


def test_endpoints_are_always_on_by_default(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=730, workload="hosting", clouds=("aws",), services=("vm",))
    options = quote(catalog, request, default_rates={"aws": 0.0})
    commit = next(o for o in options if o.purchase == "commit_3y")
    assert commit.expected_cost == pytest.approx(0.384 * 0.4 * 730)
    spot = next(o for o in options if o.purchase == "spot")
    assert any("endpoint loses no work" in n for n in spot.notes)


# --- deadlines ------------------------------------------------------------------------------------
def test_on_demand_meets_a_deadline_exactly_when_the_hours_fit(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, hours=6, purchase=("on_demand",), deadline_hours=6)
    assert {o.p_deadline for o in quote(catalog, request)} == {1.0}


def test_spot_that_misses_the_deadline_is_dropped_without_fallback(catalog):
    base = QuoteRequest(
        cpus=8, memory_gib=32, hours=8, clouds=("gcp",), services=("vm",), checkpoint_interval_hours=0.5
    )
    calm = quote(catalog, replace(base, deadline_hours=12, on_demand_fallback=False))
    assert calm[0].purchase == "spot" and (calm[0].p_deadline or 0) >= 0.9
    assert calm[0].p_deadline == pytest.approx(
        spot_model.completion_probability(12, 8, spot_model.default_rate("gcp"), 0.5, 0.05)
    )
    stormy = quote(catalog, replace(base, deadline_hours=9, on_demand_fallback=False), default_rates={"gcp": 2.0})
    assert "spot" not in {o.purchase for o in stormy}
    assert all(o.p_deadline == 1.0 for o in stormy)


def test_spot_that_misses_the_deadline_becomes_a_priced_fallback_plan(catalog):
    request = QuoteRequest(
        cpus=8,
        memory_gib=32,
        hours=8,
        clouds=("gcp",),
        services=("vm",),
        checkpoint_interval_hours=0.5,
        deadline_hours=10,
    )
    options = quote(catalog, request, default_rates={"gcp": 1.0})
    plan = next(o for o in options if o.purchase == "spot_then_on_demand")
    expected = spot_model.fallback_plan(10, 8, 1.0, 0.5, 0.05)
    assert expected is not None
    assert plan.p_deadline == 1.0
    assert plan.expected_cost == pytest.approx(0.09 * expected.spot_hours + 0.388 * expected.on_demand_hours)
    assert plan.expected_hours == pytest.approx(expected.spot_hours + expected.on_demand_hours)
    assert any("move to on-demand" in n for n in plan.notes)
    assert options[0].purchase == "spot_then_on_demand"  # cheaper than on-demand throughout


def test_a_deadline_shorter_than_the_work_is_refused(catalog):
    with pytest.raises(InvalidArgument, match=r"no option finishes within 30 h with probability 0\.9: the work alone"):
        quote(catalog, QuoteRequest(gpus=8, gpu_type="H100", hours=48, deadline_hours=30))


def test_spot_only_with_a_deadline_it_cannot_meet_is_refused(catalog):
    request = QuoteRequest(
        cpus=8,
        memory_gib=32,
        hours=8,
        clouds=("gcp",),
        purchase=("spot",),
        deadline_hours=8.5,
        on_demand_fallback=False,
    )
    with pytest.raises(InvalidArgument, match=r"spot finishes in time with probability 0\.\d\d at best"):
        quote(catalog, request, default_rates={"gcp": 2.0})


# --- refusals -------------------------------------------------------------------------------------
def test_unknown_gpu_type_names_close_ones(catalog):
    with pytest.raises(InvalidArgument, match="unknown GPU type 'A1000'; did you mean"):
        quote(catalog, QuoteRequest(gpus=1, gpu_type="A1000"))


def test_impossible_gpu_count_names_the_largest(catalog):
    with pytest.raises(InvalidArgument) as caught:
        quote(catalog, QuoteRequest(gpus=16, gpu_type="H100"))
    assert caught.value.message == "no instance has 16 H100 GPUs; the largest is 8 x H100 (p5.48xlarge, a3-highgpu-8g)"


def test_impossible_cpu_and_memory_name_the_largest(catalog):
    with pytest.raises(InvalidArgument, match=r"no CPU instance has 64 vCPUs; the largest .* 16 vCPUs \(m5.4xlarge\)"):
        quote(catalog, QuoteRequest(cpus=64))
    with pytest.raises(InvalidArgument, match=r"no CPU instance has 500 GiB of memory; .* 64 GiB \(m5.4xlarge\)"):
        quote(catalog, QuoteRequest(memory_gib=500))
    with pytest.raises(
        InvalidArgument, match=r"no instance with 8 x H100 has 400 vCPUs; .* 208 vCPUs \(a3-highgpu-8g\)"
    ):
        quote(catalog, QuoteRequest(gpus=8, gpu_type="H100", cpus=400))


def test_spot_only_in_a_region_without_spot(catalog):
    request = QuoteRequest(cpus=8, memory_gib=32, regions=("eu-west-1",), purchase=("spot",))
    with pytest.raises(InvalidArgument, match=r"no spot offering for 8 vCPUs, 32 GiB in eu-west-1 .*: spot for it is"):
        quote(catalog, request)


def test_conflicting_constraints(catalog):
    with pytest.raises(InvalidArgument, match="conflicting constraints: region us-east-1 is on aws, but clouds=gcp"):
        quote(catalog, QuoteRequest(clouds=("gcp",), regions=("us-east-1",)))
    with pytest.raises(InvalidArgument, match=r"conflicting constraints: services=sagemaker .* clouds=gcp"):
        quote(catalog, QuoteRequest(clouds=("gcp",), services=("sagemaker",)))


def test_nothing_in_the_allowed_places(catalog):
    with pytest.raises(
        InvalidArgument, match=r"no offer fits 1 x H100.* within regions=eastus.*offered in aws us-east-1"
    ):
        quote(catalog, QuoteRequest(gpus=1, gpu_type="H100", regions=("eastus",)))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (QuoteRequest(hours=0), "hours must be positive"),
        (QuoteRequest(hours=-3), r"hours must be positive \(the work to run\), got -3"),
        (QuoteRequest(nodes=0), "nodes must be at least 1"),
        (QuoteRequest(cpus=-1), "must not be negative"),
        (QuoteRequest(deadline_hours=0), "deadline_hours must be positive"),
        (QuoteRequest(deadline_probability=1.5), "deadline_probability must be in"),
        (QuoteRequest(purchase=("reserved",)), "unknown purchase option 'reserved'; use on_demand, spot"),
        (QuoteRequest(services=("emr",)), "unknown service 'emr'"),
        (QuoteRequest(workload="batch"), "unknown workload 'batch'"),
        (QuoteRequest(clouds=("oracle",)), "unknown cloud 'oracle'"),
        (QuoteRequest(regions=("us-east-2",)), "unknown region 'us-east-2'; did you mean us-east-1"),
        (QuoteRequest(max_hourly=-1), "max_hourly must be a positive price"),
        (QuoteRequest(utilization=0), "utilization must be in"),
    ],
)
def test_bad_requests(catalog, request_, message):
    with pytest.raises(InvalidArgument, match=message):
        quote(catalog, request_)


def test_max_hourly_below_every_option_names_the_cheapest(catalog):
    with pytest.raises(InvalidArgument) as caught:
        quote(catalog, QuoteRequest(cpus=8, memory_gib=32, max_hourly=0.01))
    assert caught.value.message == (
        "no option costs at most $0.01/h per node (max_hourly); the cheapest is $0.05/h: Standard_D8s_v5 "
        "(azure eastus, vm, spot)"
    )


# --- helpers ----------------------------------------------------------------------------------------
def test_cheapest_fit(catalog):
    found = cheapest_fit(catalog, 4, 16, cloud="aws", region="us-east-1")
    assert found is not None and found.instance_type == "m5.2xlarge"
    found = cheapest_fit(catalog, 4, 16, gpu_type="a10g", cloud="aws", region="us-east-1")
    assert found is not None and found.instance_type == "g5.xlarge"
    assert cheapest_fit(catalog, 4, 16, service="sagemaker", cloud="aws", region="us-east-1") is not None
    assert cheapest_fit(catalog, 64, 16, cloud="aws", region="us-east-1") is None


def test_the_index_is_built_once_per_catalog(catalog):
    first = quote_index.index_for(catalog)
    assert quote_index.index_for(catalog) is first
    catalog.offers.append(offer("aws", "us-east-1", "m5.large", 2, 8, 0.096))
    assert quote_index.index_for(catalog) is not first
    assert not math.isnan(quote_index.index_for(catalog).on_demand[-1])
