"""The shipped price catalog and the catalog API: coverage of clouds, regions and GPU types, provenance on
every row, search filters, GPU names, bad rows, staleness and commitment lookups."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from strato.cost.catalog import Catalog, load_catalog, read_offers_csv
from strato.cost.gpus import REQUIRED_GPUS, resolve_gpu
from strato.cost.offers import Offer, columns, offer_from_row, record_to_row
from strato.errors import InvalidArgument, NotFound

HEADER = ",".join(columns(Offer))
ROW = "aws,us-east-1,m5.xlarge,vm,any,general,4,16,,0,0,{price},{spot},<5%,https://aws.amazon.com/ec2/pricing/,{as_of}"


def write_catalog(directory: Path, *rows: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "offers.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    return directory


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


def test_shipped_catalog_loads_cleanly_with_three_continents_per_cloud(shipped: Catalog) -> None:
    assert shipped.warnings == [] and len(shipped.offers) >= 300
    expected = {
        "aws": {"us-east-1", "eu-west-1", "ap-northeast-1"},
        "gcp": {"us-central1", "europe-west4", "asia-northeast1"},
        "azure": {"eastus", "westeurope", "japaneast"},
    }
    for cloud, regions in expected.items():
        assert regions <= set(shipped.regions(cloud)), cloud
        vm = [o for o in shipped.offers if o.cloud == cloud and o.service == "vm"]
        assert {o.kind for o in vm} == {"general", "compute", "memory", "gpu"}, cloud
        for region in regions:  # on-demand and spot in every region
            here = [o for o in vm if o.region == region]
            assert here and all(o.on_demand and o.on_demand > 0 for o in here)
            assert any(o.spot is not None and 0 < o.spot < (o.on_demand or 0) for o in here), (cloud, region)


def test_every_gpu_type_of_the_issue_is_offered_with_one_and_eight_gpu_sizes(shipped: Catalog) -> None:
    gpus = {(o.cloud, o.gpu_model) for o in shipped.offers if o.gpu_count}
    assert set(REQUIRED_GPUS) <= {model for _, model in gpus}
    assert ("aws", "A10G") in gpus and ("azure", "A10") in gpus
    for model in ("A100-40GB", "A100-80GB", "H100"):
        counts = {o.gpu_count for o in shipped.offers if o.gpu_model == model}
        assert {1, 8} <= counts, model
    for offer in shipped.offers:
        assert (offer.kind == "gpu") == (offer.gpu_count > 0) and (offer.gpu_memory_gib > 0) == (offer.gpu_count > 0)


def test_every_row_has_a_source_and_an_iso_date(shipped: Catalog) -> None:
    records: list[Any] = [*shipped.offers, *shipped.commitments, *shipped.dbu_rates, *shipped.egress]
    assert shipped.commitments and shipped.dbu_rates and shipped.egress
    for record in records:
        assert record.source.strip(), record
        assert date.fromisoformat(record.as_of) <= date(2026, 12, 31), record


def test_managed_rows_price_against_their_vm(shipped: Catalog) -> None:
    vm = {(o.cloud, o.region, o.instance_type, o.gpu_count): o for o in shipped.offers if o.service == "vm"}
    managed = [o for o in shipped.offers if o.service != "vm"]
    assert {(o.service, o.workload) for o in managed} == {
        (s, w) for s in ("sagemaker", "vertex", "azureml") for w in ("training", "hosting")
    }
    for offer in managed:
        base = vm[(offer.cloud, offer.region, offer.instance_type.removeprefix("ml."), offer.gpu_count)]
        premium = (offer.on_demand or 0) / (base.on_demand or 1) - 1
        expected = {"sagemaker": (0.14, 0.41), "vertex": (0.149, 0.151), "azureml": (0.0, 0.0)}[offer.service]
        assert expected[0] <= round(premium, 3) <= expected[1], offer
        if offer.workload == "hosting":
            assert offer.spot is None, offer  # no spot endpoints


def test_interruption_buckets_only_where_aws_publishes_them(shipped: Catalog) -> None:
    aws_spot = [o for o in shipped.offers if o.cloud == "aws" and o.spot is not None]
    assert aws_spot and all(o.interruption_bucket for o in aws_spot)
    assert all(o.interruption_bucket is None for o in shipped.offers if o.cloud != "aws")


def test_search_gpu_a100_on_gcp_means_the_40gb_part_cheapest_first(shipped: Catalog) -> None:
    found = shipped.search(gpu="A100", cloud="gcp")
    assert found and {(o.cloud, o.gpu_model) for o in found} == {("gcp", "A100-40GB")}
    assert {"a2-highgpu-1g", "a2-highgpu-8g"} <= {o.instance_type for o in found}
    assert {o.service for o in found} == {"vm", "vertex"}
    prices = [o.on_demand or 0 for o in found]
    assert prices == sorted(prices)
    # Any spelling finds the same rows; the 80 GB part is asked for by name.
    assert shipped.search(gpu="nvidia-tesla-a100", cloud="gcp") == found
    larger = {o.instance_type for o in shipped.search(gpu="a100-80g", cloud="gcp")}
    assert larger == {"a2-ultragpu-1g", "a2-ultragpu-8g"}


def test_search_filters_combine(shipped: Catalog) -> None:
    found = shipped.search(cloud="aws", region="eu-west-1", service="vm", min_vcpus=8, min_memory_gib=60)
    assert found and all(
        o.cloud == "aws" and o.region == "eu-west-1" and o.service == "vm" and o.vcpus >= 8 and o.memory_gib >= 60
        for o in found
    )
    eight = shipped.search(gpu="H100", min_gpus=8)
    assert {o.cloud for o in eight} == {"aws", "gcp", "azure"} and all(o.gpu_count >= 8 for o in eight)
    assert shipped.search(cloud="azure", gpu="A10G") == []  # Azure sells the A10, not the A10G


def test_unknown_names_suggest_the_close_ones(shipped: Catalog) -> None:
    with pytest.raises(InvalidArgument, match=r"unknown GPU type 'H1OO'; did you mean 'H100'"):
        shipped.search(gpu="H1OO")
    with pytest.raises(InvalidArgument, match=r"did you mean 'A100-80GB' or 'A100-40GB'"):
        resolve_gpu("A100-90GB")
    with pytest.raises(InvalidArgument, match=r"unknown GPU type 'tpu-v5'.*known: T4, L4"):
        resolve_gpu("tpu-v5")
    with pytest.raises(InvalidArgument, match=r"unknown cloud 'azur'; did you mean 'azure'"):
        shipped.search(cloud="azur")
    with pytest.raises(InvalidArgument, match=r"unknown aws region 'us-east1'; did you mean 'us-east-1'"):
        shipped.search(cloud="aws", region="us-east1")
    with pytest.raises(InvalidArgument, match="min_vcpus must be >= 0"):
        shipped.search(min_vcpus=-1)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("a100", "A100-40GB"), ("A100-80G", "A100-80GB"), ("nvidia-tesla-t4", "T4"), ("a10g", "A10G"),
     ("A10", "A10"), ("nvidia-h100-80gb", "H100"), ("NVIDIA L4", "L4"), ("h100_mega", "H100")],
)  # fmt: skip
def test_gpu_spellings_resolve_to_canonical_names(spelling: str, canonical: str) -> None:
    assert resolve_gpu(spelling) == canonical


def test_a_row_without_a_price_is_skipped_with_a_warning(tmp_path: Path) -> None:
    directory = write_catalog(
        tmp_path / "cat",
        ROW.format(price="0.192", spot="0.08", as_of="2026-01-01"),
        ROW.format(price="", spot="0.08", as_of="2026-01-01").replace("m5.xlarge", "m5.2xlarge"),
        ROW.format(price="0.2", spot="", as_of="2026-13-01").replace("m5.xlarge", "m5.4xlarge"),
    )
    catalog = load_catalog(directory)
    assert [o.instance_type for o in catalog.offers] == ["m5.xlarge"]
    assert len(catalog.warnings) == 2
    assert "offers.csv line 3 (aws us-east-1 m5.2xlarge vm): no on-demand price" in catalog.warnings[0]
    assert "row skipped" in catalog.warnings[0] and "as_of '2026-13-01' is not an ISO date" in catalog.warnings[1]
    collected: list[str] = []
    assert len(read_offers_csv(directory / "offers.csv", warnings=collected)) == 1 and len(collected) == 2


def test_a_file_missing_a_column_or_offers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "offers.csv").write_text(HEADER.replace(",spot", "") + "\n")
    with pytest.raises(InvalidArgument, match=r"lacks the column\(s\) spot"):
        load_catalog(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(NotFound, match="no offers in"):
        load_catalog(tmp_path / "b")
    with pytest.raises(NotFound, match="does not exist"):
        load_catalog(tmp_path / "missing")


def test_stale_catalog_warns_with_its_age(tmp_path: Path, shipped: Catalog) -> None:
    catalog = load_catalog(write_catalog(tmp_path / "cat", ROW.format(price="0.192", spot="", as_of="2026-01-01")))
    assert catalog.oldest_as_of() == date(2026, 1, 1) and catalog.age_days(date(2026, 5, 1)) == 120
    assert catalog.stale_warning(date(2026, 3, 1)) is None
    assert catalog.stale_warning(date(2026, 5, 1)) == (
        "the price catalog is 120 days old (as of 2026-01-01); run strato cost catalog update"
    )
    assert catalog.stale_warning(date(2026, 5, 1), max_age_days=200) is None
    oldest = shipped.oldest_as_of()
    assert shipped.stale_warning(oldest + timedelta(days=30)) is None
    assert f"{shipped.age_days(oldest + timedelta(days=400)):.0f} days old" in (
        shipped.stale_warning(oldest + timedelta(days=400)) or ""
    )
    with pytest.raises(NotFound, match="no rows"):
        Catalog().stale_warning(date(2026, 1, 1))


def test_commitment_lookup_prefers_the_family_row(shipped: Catalog) -> None:
    c2 = shipped.commitment("gcp", "vm", "c2", 3)
    n2 = shipped.commitment("gcp", "vm", "n2", 3)
    assert c2 is not None and c2.discount == pytest.approx(0.60) and c2.family == "c2"
    assert n2 is not None and n2.discount == pytest.approx(0.55) and n2.family == "*"
    a3 = next(o for o in shipped.offers if o.instance_type == "a3-highgpu-8g")
    assert (shipped.commitment(a3.cloud, a3.service, a3.family, 1) or n2).discount == pytest.approx(0.306)
    for cloud, service in (("aws", "vm"), ("aws", "sagemaker"), ("azure", "vm"), ("azure", "azureml")):
        one, three = shipped.commitment(cloud, service, "*", 1), shipped.commitment(cloud, service, "*", 3)
        assert one and three and 0 < one.discount < three.discount < 0.75
    assert shipped.commitment("gcp", "vertex", "n2", 1) is None  # Vertex AI takes no commitments
    with pytest.raises(InvalidArgument, match="term_years must be 1 or 3"):
        shipped.commitment("aws", "vm", "m5", 2)
    assert shipped.dbu_rate("aws", "jobs") and shipped.egress_price("gcp", "internet")


def test_offer_families_and_row_round_trip(shipped: Catalog) -> None:
    by_type = {o.instance_type: o for o in shipped.offers}
    assert by_type["ml.m5.xlarge"].family == "m5" and by_type["n2-highmem-8"].family == "n2"
    assert by_type["Standard_NC24ads_A100_v4"].family == "NC"
    for offer in shipped.offers[::25]:
        assert offer_from_row(record_to_row(offer)) == offer


def test_loading_is_lazy_and_cached_until_the_files_change(tmp_path: Path) -> None:
    # Importing the module reads nothing; the first load_catalog() call does.
    subprocess.run([sys.executable, "-c", "import strato.cost.catalog as c; assert not c._CACHE"], check=True)
    assert load_catalog() is load_catalog()
    directory = write_catalog(tmp_path / "cat", ROW.format(price="0.192", spot="", as_of="2026-01-01"))
    first = load_catalog(directory)
    assert load_catalog(str(directory)) is first
    write_catalog(directory, ROW.format(price="0.2", spot="0.1", as_of="2026-02-01"))
    assert load_catalog(directory).offers[0].on_demand == 0.2
