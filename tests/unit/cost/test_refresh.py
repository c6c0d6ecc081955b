"""Catalog refresh: each price API's parser on a recorded sample in its documented shape (what it keeps,
what it drops, exact prices), paging, and update_catalog's all-or-nothing write: a failed fetch, a source
with no rows or a bad write leave the catalog in use byte-identical."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.cost.catalog import read_catalog_dir
from strato.cost.gpus import GPU_MEMORY_GIB
from strato.cost.offers import Commitment, DbuRate, EgressPrice, Offer, columns, record_to_row
from strato.cost.refresh import aws, azure, gcp, spot_advisor, update_catalog, writer
from strato.cost.refresh.common import http_fetch
from strato.errors import InvalidArgument, Unavailable

SAMPLES = Path(__file__).parent / "samples"
TODAY = date(2026, 7, 15)
OLD = "2026-01-02"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


AZURE_PAGE_2 = json.loads(sample("azure_retail_eastus_page1.json"))["NextPageLink"]
GCP_TOKEN = json.loads(sample("gcp_skus_page1.json"))["nextPageToken"]


class Web:
    """Serves the samples for the URLs the fetchers ask for; ``fail`` raises for URLs containing it."""

    def __init__(self, fail: str | None = None, overrides: dict[str, bytes] | None = None):
        self.fail = fail
        self.overrides = overrides or {}
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, params: dict[str, str] | None, headers: dict[str, str] | None) -> bytes:
        self.calls.append((url, dict(params or {})))
        if self.fail and self.fail in url:
            raise Unavailable(f"GET {url} failed (ConnectError); check the network and try again")
        if url in self.overrides:
            return self.overrides[url]
        if url == aws.offer_url("AmazonEC2", "us-east-1"):
            return sample("aws_ec2_us-east-1.json")
        if url == aws.offer_url("AmazonSageMaker", "us-east-1"):
            return sample("aws_sagemaker_us-east-1.json")
        if url == azure.RETAIL_URL:
            assert params == {"$filter": azure.retail_filter("eastus")}
            return sample("azure_retail_eastus_page1.json")
        if url == AZURE_PAGE_2:
            return sample("azure_retail_eastus_page2.json")
        if url == gcp.SKUS_URL:
            assert params is not None and params["key"] == "KEY"
            return sample("gcp_skus_page2.json" if params.get("pageToken") == GCP_TOKEN else "gcp_skus_page1.json")
        if url == spot_advisor.ADVISOR_URL:
            return sample("aws_spot_advisor.json")
        raise AssertionError(f"unexpected fetch {url}")


def offer(cloud: str, region: str, instance_type: str, vcpus: float, memory: float, price: float, **kw: Any) -> Offer:
    gpu_count = kw.pop("gpu_count", 0)
    values: dict[str, Any] = {
        "service": "vm",
        "workload": "any",
        "kind": "gpu" if gpu_count else "general",
        "gpu_model": None,
        "gpu_memory_gib": GPU_MEMORY_GIB[kw["gpu_model"]] if gpu_count else 0.0,
        "spot": None,
        "interruption_bucket": None,
        "source": "hand-written test row",
        "as_of": OLD,
    }
    values.update(kw)
    return Offer(
        cloud, region, instance_type, vcpus=vcpus, memory_gib=memory, on_demand=price, gpu_count=gpu_count, **values
    )


CURRENT = [
    offer("aws", "us-east-1", "m5.xlarge", 4, 16, 0.2, spot=0.08, interruption_bucket="5-10%"),
    offer("aws", "us-east-1", "ml.m5.xlarge", 4, 16, 0.25, service="sagemaker", workload="training"),
    offer("aws", "eu-west-1", "m5.xlarge", 4, 16, 0.214),
    offer("azure", "eastus", "Standard_D4s_v5", 4, 16, 0.2, spot=0.04),
    offer("azure", "eastus", "Standard_D4s_v5", 4, 16, 0.2, service="azureml", workload="training", spot=0.04),
    offer("azure", "eastus", "Standard_E8s_v5", 8, 64, 0.5, kind="memory"),
    offer("azure", "eastus", "Standard_F8s_v2", 8, 16, 0.3, kind="compute"),
    offer("azure", "eastus", "Standard_M8ms", 8, 218.75, 2.0, kind="memory"),  # no longer in the price list
    offer("azure", "eastus", "Standard_M8ms", 8, 218.75, 2.0, kind="memory", service="azureml", workload="training"),
    offer("azure", "eastus", "Standard_NC24ads_A100_v4", 24, 220, 3.6, gpu_model="A100-80GB", gpu_count=1),
    offer("azure", "eastus", "Standard_NV36ads_A10_v5", 36, 440, 3.0, gpu_model="A10", gpu_count=1),
    offer("gcp", "us-central1", "n2-standard-4", 4, 16, 0.19),
    offer("gcp", "us-central1", "n2-standard-4", 4, 16, 0.2185, service="vertex", workload="training"),
    offer("gcp", "europe-west4", "n2-standard-4", 4, 16, 0.21),
    offer("gcp", "us-central1", "g2-standard-8", 8, 32, 0.85, gpu_model="L4", gpu_count=1),
    offer("gcp", "us-central1", "a2-highgpu-1g", 12, 85, 3.6, gpu_model="A100-40GB", gpu_count=1),
    offer("gcp", "us-central1", "e2-medium", 2, 4, 0.03),
]


def write_table(path: Path, records: list[Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=columns(type(records[0])), lineterminator="\n")
        out.writeheader()
        out.writerows(record_to_row(r) for r in records)


def make_catalog(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_table(directory / "offers.csv", CURRENT)
    write_table(directory / "commitments.csv", [Commitment("aws", "vm", "*", 1, 0.28, "test", OLD)])
    write_table(directory / "dbu_rates.csv", [DbuRate("aws", "jobs", "premium", 0.15, 0.5, "test", OLD)])
    write_table(directory / "egress.csv", [EgressPrice("aws", "internet", 0.09, "test", OLD)])
    return directory


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return make_catalog(tmp_path / "cost-catalog")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def by_type(offers: list[Offer], **match: Any) -> dict[str, Offer]:
    return {o.instance_type: o for o in offers if all(getattr(o, k) == v for k, v in match.items())}


# --- parsers -------------------------------------------------------------------------------------


def test_ec2_offer_file_keeps_linux_shared_on_demand_instances_only() -> None:
    parsed = aws.parse_ec2(json.loads(sample("aws_ec2_us-east-1.json")), region="us-east-1", as_of="2026-07-15")
    rows = by_type(parsed.offers)
    assert sorted(rows) == ["c5.2xlarge", "g5.xlarge", "m5.xlarge", "p4d.24xlarge", "r5.large"]
    # The Linux on-demand price: not Windows (0.376), dedicated (0.212), SQL (0.672) or the reserved term (0.121).
    assert rows["m5.xlarge"].on_demand == 0.192
    assert (rows["m5.xlarge"].vcpus, rows["m5.xlarge"].memory_gib, rows["m5.xlarge"].kind) == (4, 16, "general")
    assert (rows["c5.2xlarge"].kind, rows["r5.large"].kind) == ("compute", "memory")
    p4d = rows["p4d.24xlarge"]
    assert (p4d.on_demand, p4d.memory_gib, p4d.gpu_model, p4d.gpu_count, p4d.gpu_memory_gib) == (
        32.7726, 1152, "A100-40GB", 8, 40
    )  # fmt: skip
    assert (rows["g5.xlarge"].gpu_model, rows["g5.xlarge"].kind) == ("A10G", "gpu")
    assert all(o.spot is None and o.service == "vm" and o.as_of == "2026-07-15" for o in parsed.offers)
    assert "AmazonEC2 us-east-1 published 2026-07-01" in rows["m5.xlarge"].source
    assert parsed.skipped == {
        "not Linux": 1,
        "not shared tenancy (dedicated or host)": 1,
        "pre-installed software": 1,
        "capacity-reservation row": 1,
        "GPU model not known to the catalog": 1,  # g4ad (AMD Radeon)
        "accelerator not modelled (Inferentia, Trainium, FPGA)": 1,
        "no on-demand hourly price": 1,  # only a reserved term
        "not an instance (other product family)": 1,  # an EBS volume
    }


def test_sagemaker_offer_file_keeps_training_and_hosting_rows() -> None:
    doc = json.loads(sample("aws_sagemaker_us-east-1.json"))
    parsed = aws.parse_sagemaker(doc, region="us-east-1", as_of="2026-07-15")
    keys = sorted((o.instance_type, o.workload) for o in parsed.offers)
    assert keys == [
        ("ml.g5.xlarge", "hosting"), ("ml.g5.xlarge", "training"), ("ml.m5.xlarge", "hosting"),
        ("ml.m5.xlarge", "training"), ("ml.p4d.24xlarge", "training"),
    ]  # fmt: skip
    p4d = by_type(parsed.offers)["ml.p4d.24xlarge"]
    assert (p4d.service, p4d.on_demand, p4d.gpu_model, p4d.gpu_count) == ("sagemaker", 37.688, "A100-40GB", 8)
    assert by_type(parsed.offers, workload="hosting")["ml.g5.xlarge"].on_demand == 1.408
    assert parsed.skipped == {"not training or hosting (notebook, processing, batch ...)": 2}


def test_sagemaker_workload_falls_back_to_the_usage_type() -> None:
    doc = json.loads(sample("aws_sagemaker_us-east-1.json"))
    for product in doc["products"].values():
        product["attributes"].pop("component")
    parsed = aws.parse_sagemaker(doc, region="us-east-1", as_of="2026-07-15")
    assert len(parsed.offers) == 5  # USE1-Train:... and USE1-Host:...; Notebk and Processing still dropped


def test_azure_follows_next_page_link_and_keeps_linux_pay_as_you_go_with_spot() -> None:
    web = Web()
    items = azure.fetch_items(web, "eastus")
    assert [url for url, _ in web.calls] == [azure.RETAIL_URL, AZURE_PAGE_2]
    assert web.calls[1][1] == {}  # the next link carries the whole query
    templates = {o.instance_type.lower(): o for o in CURRENT if o.cloud == "azure" and o.service == "vm"}
    parsed = azure.parse_items(items, templates, region="eastus", as_of="2026-07-15")
    rows = by_type(parsed.offers)
    assert sorted(rows) == [
        "Standard_D4s_v5", "Standard_E8s_v5", "Standard_F8s_v2", "Standard_NC24ads_A100_v4", "Standard_NV36ads_A10_v5"
    ]  # fmt: skip
    assert (rows["Standard_D4s_v5"].on_demand, rows["Standard_D4s_v5"].spot) == (0.192, 0.0384)
    assert rows["Standard_F8s_v2"].spot == 0.0676  # no Spot meter: the Low Priority one
    assert rows["Standard_NV36ads_A10_v5"].spot is None
    nc = rows["Standard_NC24ads_A100_v4"]
    assert (nc.on_demand, nc.spot, nc.gpu_model, nc.vcpus, nc.region) == (3.673, 1.4692, "A100-80GB", 24, "eastus")
    assert parsed.skipped == {
        "Windows": 2,
        "not pay-as-you-go (reservation or dev/test)": 1,
        "size not in the current catalog (vCPUs and memory unknown)": 1,  # Standard_L8s_v3
        "evictable price without a pay-as-you-go price": 1,  # a T4 size with only a Spot meter
    }


def test_azure_paging_that_never_ends_is_refused() -> None:
    page = json.loads(sample("azure_retail_eastus_page2.json"))
    page["NextPageLink"] = azure.RETAIL_URL
    web = Web(overrides={azure.RETAIL_URL: json.dumps(page).encode()})
    with pytest.raises(Unavailable, match="paging for eastus does not end"):
        azure.fetch_items(web, "eastus")


def test_gcp_follows_page_tokens_and_prices_machine_types_from_vcpu_ram_and_gpu_rates() -> None:
    web = Web()
    skus = gcp.fetch_skus(web, "KEY")
    assert [params.get("pageToken") for _, params in web.calls] == [None, GCP_TOKEN]
    assert len(skus) == 20
    templates = [o for o in CURRENT if o.cloud == "gcp" and o.service == "vm"]
    parsed = gcp.price_machine_types(skus, templates, regions=["us-central1", "europe-west4"], as_of="2026-07-15")
    central = by_type(parsed.offers, region="us-central1")
    assert sorted(central) == ["a2-highgpu-1g", "g2-standard-8", "n2-standard-4"]
    # n2-standard-4: 4 x 0.031611 per vCPU-hour + 16 x 0.004237 per GiB-hour; Spot from the Preemptible SKUs.
    assert central["n2-standard-4"].on_demand == 0.194236
    assert central["n2-standard-4"].spot == 0.046984
    assert central["g2-standard-8"].on_demand == 0.85364  # + one L4 at 0.56004
    assert central["g2-standard-8"].spot is None  # no Preemptible G2 or L4 SKU in the sample
    assert central["a2-highgpu-1g"].on_demand == 3.673385
    assert central["a2-highgpu-1g"].spot == 1.62171
    europe = by_type(parsed.offers, region="europe-west4")
    assert (europe["n2-standard-4"].on_demand, europe["n2-standard-4"].spot) == (0.213848, None)
    assert parsed.skipped == {
        "SKU not an on-demand or spot compute price (commitment, license, disk ...)": 3,
        "SKU not a vCPU, memory or GPU rate of a predefined type": 2,  # custom and sole-tenancy cores
        "shared-core machine type (not priced per vCPU)": 1,
    }


def test_spot_advisor_gives_buckets_and_spot_prices_for_linux() -> None:
    advice = spot_advisor.parse_spot_advisor(json.loads(sample("aws_spot_advisor.json")))
    assert advice.advice[("us-east-1", "m5.xlarge")] == spot_advisor.Advice(60, "5-10%")
    assert advice.advice[("us-east-1", "g5.xlarge")].bucket == ">20%"
    assert advice.advice[("eu-west-1", "m5.xlarge")].bucket == "10-15%"
    assert len(advice.advice) == 4
    assert advice.skipped == {"not Linux": 2, "unknown interruption range": 1}
    rows, changed = spot_advisor.apply_advice(CURRENT, advice.advice)
    m5 = by_type(rows, region="us-east-1", service="vm")["m5.xlarge"]
    assert (changed, m5.spot, m5.interruption_bucket) == (2, 0.08, "5-10%")  # 0.2 x (1 - 60%)
    assert "spot estimated from AWS Spot Advisor" in m5.source
    assert by_type(rows, service="sagemaker")["ml.m5.xlarge"].spot is None  # VM rows only


# --- update_catalog ------------------------------------------------------------------------------


def test_update_replaces_refreshed_rows_and_keeps_the_rest(catalog: Path) -> None:
    commitments = (catalog / "commitments.csv").read_bytes()
    report = update_catalog(catalog, fetch=Web(), gcp_key="KEY", regions={"aws": ["us-east-1"]}, today=TODAY)
    assert report.ok, report.summary
    written = read_catalog_dir(catalog)
    assert not written.warnings
    # EC2 5 + SageMaker 5 + eu-west-1 1 + Azure 5 + Azure ML 1 + GCP 4 (3 us-central1, 1 europe-west4) + Vertex 1
    assert report.offers == len(written.offers) == 22
    aws_vm = by_type(written.offers, cloud="aws", region="us-east-1", service="vm")
    assert (aws_vm["m5.xlarge"].on_demand, aws_vm["m5.xlarge"].spot, aws_vm["m5.xlarge"].as_of) == (
        0.192, 0.0768, "2026-07-15"
    )  # fmt: skip
    # A region that was not fetched keeps its price; the advisor still sets its bucket and spot.
    europe = by_type(written.offers, region="eu-west-1")["m5.xlarge"]
    assert (europe.on_demand, europe.interruption_bucket, europe.as_of) == (0.214, "10-15%", OLD)
    sagemaker = by_type(written.offers, service="sagemaker", workload="training")
    assert sagemaker["ml.m5.xlarge"].on_demand == 0.23
    # Managed rows follow their VM's new price with their old premium (Azure ML: none; Vertex: +15%).
    assert "Standard_M8ms" not in by_type(written.offers, cloud="azure")  # gone as a VM, so as Azure ML too
    azureml = by_type(written.offers, service="azureml")["Standard_D4s_v5"]
    assert (azureml.on_demand, azureml.spot, azureml.as_of) == (0.192, 0.0384, "2026-07-15")
    vertex = by_type(written.offers, service="vertex")["n2-standard-4"]
    assert vertex.on_demand == round(0.194236 * 0.2185 / 0.19, 6)
    assert "e2-medium" not in by_type(written.offers, cloud="gcp")  # shared core: not priced, not kept
    assert (catalog / "commitments.csv").read_bytes() == commitments
    assert written.commitments and written.dbu_rates and written.egress
    assert sorted(p.name for p in catalog.parent.iterdir()) == ["cost-catalog"]  # no temp dirs left behind


def test_report_says_rows_and_skips_per_provider(catalog: Path) -> None:
    report = update_catalog(catalog, fetch=Web(), gcp_key="KEY", regions={"aws": ["us-east-1"]}, today=TODAY)
    aws_report = report.providers["aws"]
    assert (aws_report.status, aws_report.rows, aws_report.skipped["not Linux"]) == ("refreshed", 10, 1)
    assert report.providers["spot_advisor"].rows == 4
    assert report.summary[0].startswith("aws: refreshed, 10 rows kept, 10 skipped (")
    assert "azure: refreshed, 5 rows kept, 5 skipped" in report.summary[1]
    assert "re-priced 1 azureml rows from their VMs, dropped 1 whose VM is no longer priced" in report.summary[1]
    assert "set the interruption bucket and spot price of 4 offers" in report.summary[3]
    assert report.summary[-1] == f"wrote {report.offers} offers to {catalog}"
    assert str(report) == "\n".join(report.summary)


def test_a_fetch_failing_mid_paging_leaves_the_catalog_byte_identical(catalog: Path) -> None:
    before = snapshot(catalog)
    report = update_catalog(catalog, fetch=Web(fail="skip=100"), gcp_key="KEY", regions={"aws": ["us-east-1"]})
    assert not report.written
    assert report.providers["azure"].status == "failed"
    assert report.providers["aws"].status == "refreshed"  # the others are still reported
    assert report.errors == [f"azure failed: GET {AZURE_PAGE_2} failed (ConnectError); check the network and try again"]
    assert report.summary[-1].startswith(f"the catalog in {catalog} was not changed: azure failed")
    assert snapshot(catalog) == before
    assert sorted(p.name for p in catalog.parent.iterdir()) == ["cost-catalog"]


def test_any_exception_from_a_source_is_reported_not_raised(catalog: Path) -> None:
    before = snapshot(catalog)

    def broken(url: str, params: dict[str, str] | None, headers: dict[str, str] | None) -> bytes:
        raise ConnectionResetError("connection reset by peer")

    report = update_catalog(catalog, providers=["spot_advisor"], fetch=broken)
    assert report.errors == ["spot_advisor failed: ConnectionResetError: connection reset by peer"]
    assert snapshot(catalog) == before


@pytest.mark.parametrize(
    ("provider", "url", "body"),
    [
        ("aws", aws.offer_url("AmazonEC2", "us-east-1"), {"products": {}, "terms": {"OnDemand": {}}}),
        ("azure", azure.RETAIL_URL, {"Items": [], "NextPageLink": None, "Count": 0}),
        ("spot_advisor", spot_advisor.ADVISOR_URL, {"ranges": [], "spot_advisor": {}}),
    ],
)
def test_a_source_with_zero_rows_is_refused(catalog: Path, provider: str, url: str, body: dict[str, Any]) -> None:
    before = snapshot(catalog)
    web = Web(overrides={url: json.dumps(body).encode()})
    if provider == "aws":  # the SageMaker file alone must not stand in for a missing EC2 list
        web.overrides[aws.offer_url("AmazonSageMaker", "us-east-1")] = json.dumps(body).encode()
    report = update_catalog(catalog, providers=[provider], fetch=web, regions={"aws": ["us-east-1"]})
    assert report.providers[provider].status == "empty"
    assert report.errors == [
        f"{provider} empty: the source returned no usable rows; a catalog without them would be wrong"
    ]
    assert snapshot(catalog) == before


def test_a_region_with_no_rows_is_refused(catalog: Path) -> None:
    before = snapshot(catalog)
    regions = {"gcp": ["us-central1", "asia-south2"]}
    report = update_catalog(catalog, providers=["gcp"], fetch=Web(), gcp_key="KEY", regions=regions)
    assert report.errors == ["gcp failed: no usable rows for vm in asia-south2; those rows would be lost"]
    assert snapshot(catalog) == before


def test_an_empty_ec2_list_is_refused_even_with_sagemaker_rows(catalog: Path) -> None:
    before = snapshot(catalog)
    empty: dict[str, Any] = {"products": {}, "terms": {"OnDemand": {}}}
    web = Web(overrides={aws.offer_url("AmazonEC2", "us-east-1"): json.dumps(empty).encode()})
    report = update_catalog(catalog, providers=["aws"], fetch=web, regions={"aws": ["us-east-1"]})
    assert report.errors == ["aws failed: no usable rows for vm in us-east-1; those rows would be lost"]
    assert snapshot(catalog) == before


def test_a_response_that_is_not_the_documented_shape_is_reported(catalog: Path) -> None:
    web = Web(overrides={spot_advisor.ADVISOR_URL: b"<html>rate limited</html>"})
    report = update_catalog(catalog, providers=["spot_advisor"], fetch=web)
    assert report.errors == [f"spot_advisor failed: {spot_advisor.ADVISOR_URL} did not return JSON; try again later"]
    web = Web(overrides={spot_advisor.ADVISOR_URL: b'{"message": "moved"}'})
    report = update_catalog(catalog, providers=["spot_advisor"], fetch=web)
    assert "the response has no 'ranges' list; the API format may have changed" in report.errors[0]


def test_gcp_without_a_key_is_skipped_with_how_to_give_one(catalog: Path) -> None:
    report = update_catalog(catalog, providers=["azure", "gcp"], fetch=Web(), today=TODAY)
    assert report.ok
    assert report.providers["gcp"].status == "skipped"
    assert "needs an API key" in report.providers["gcp"].message
    assert "--gcp-key" in report.providers["gcp"].message
    gcp_rows = by_type(read_catalog_dir(catalog).offers, cloud="gcp", region="us-central1", service="vm")
    assert gcp_rows["n2-standard-4"].on_demand == 0.19  # untouched
    alone = update_catalog(catalog, providers=["gcp"], fetch=Web())
    assert alone.errors == ["no provider was refreshed"] and not alone.written


def test_without_the_advisor_fresh_aws_rows_keep_the_previous_spot_discount(catalog: Path) -> None:
    report = update_catalog(catalog, providers=["aws"], fetch=Web(), regions={"aws": ["us-east-1"]}, today=TODAY)
    assert report.ok, report.summary
    m5 = by_type(read_catalog_dir(catalog).offers, region="us-east-1", service="vm")["m5.xlarge"]
    assert (m5.on_demand, m5.spot, m5.interruption_bucket) == (0.192, 0.0768, "5-10%")  # 0.08 / 0.2 of 0.192


def test_a_new_directory_starts_from_the_shipped_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = make_catalog(tmp_path / "shipped")
    monkeypatch.setattr(writer, "shipped_data_dir", lambda: shipped)
    target = tmp_path / "home" / "cost-catalog"
    report = update_catalog(target, providers=["azure"], fetch=Web(), today=TODAY)
    assert report.ok, report.summary
    assert sorted(p.name for p in target.iterdir()) == ["commitments.csv", "dbu_rates.csv", "egress.csv", "offers.csv"]
    assert snapshot(shipped)["offers.csv"] != (target / "offers.csv").read_bytes()


def test_a_new_catalog_that_does_not_read_back_is_not_swapped_in(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(catalog)
    real = writer.read_catalog_dir

    def lossy(directory: Path) -> Any:
        read = real(directory)
        read.offers.pop()
        read.warnings.append("offers.csv line 7: bad row")
        return read

    monkeypatch.setattr(writer, "read_catalog_dir", lossy)
    report = update_catalog(catalog, providers=["azure"], fetch=Web())
    assert not report.written
    assert "read back" in report.errors[0] and "offers.csv line 7: bad row" in report.errors[0]
    assert snapshot(catalog) == before
    assert sorted(p.name for p in catalog.parent.iterdir()) == ["cost-catalog"]


def test_bad_arguments_are_refused_before_any_fetch(catalog: Path) -> None:
    web = Web()
    with pytest.raises(InvalidArgument, match=r"unknown price provider\(s\) oracle; choose from aws, azure, gcp"):
        update_catalog(catalog, providers=["oracle"], fetch=web)
    (catalog / "notes").mkdir()
    with pytest.raises(InvalidArgument, match=r"is not a price catalog directory \(it holds notes\)"):
        update_catalog(catalog, fetch=web)
    assert web.calls == []


def test_the_default_fetch_names_the_url_without_its_query(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, **kwargs: Any) -> httpx.Response:
        raise httpx.ConnectError("name resolution failed")

    monkeypatch.setattr(httpx, "get", refuse)
    with pytest.raises(Unavailable) as raised:
        http_fetch(gcp.SKUS_URL + "?key=SECRET", {"key": "SECRET"}, None)
    assert raised.value.message == f"GET {gcp.SKUS_URL} failed (ConnectError); check the network and try again"
