"""Recommendations on the shipped catalog: right-sizing from measured usage, commitments for always-on
endpoints with their break-even utilization, idle endpoints; and the report's levers."""

from __future__ import annotations

import pytest

from strato.cost.advice import commitments, idle_endpoints, rightsizing
from strato.cost.catalog import load_catalog
from strato.cost.ledger import CostRecord
from strato.cost.pricing import CostTarget, Pricer
from strato.cost.report import build_report
from strato.store.metadata import ResourceRecord

GIB = 1024**3


def record(kind: str, name: str, spec: dict[str, object], status: dict[str, object], uid: str = "u1") -> ResourceRecord:
    return ResourceRecord(uid, kind, name, spec, {}, status, "Completed", False, 0.0, 0.0)


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(load_catalog(), CostTarget.parse("aws:us-east-1:on_demand"))


def test_a_job_using_a_fraction_of_its_instance_is_right_sized(pricer: Pricer) -> None:
    job = record("TrainingJob", "big", {"resources": {"cpus": 16, "memory": 64 * GIB}},
                 {"usage": {"max_cpu_percent": 150.0, "peak_memory": 3 * GIB}})  # fmt: skip
    asked = pricer.price(16, 64 * GIB)
    assert asked is not None
    hours = [CostRecord("u1", "TrainingJob", "big", "attempt-1", 0, 36000, 36000, 1, asked.offer.instance_type,
                        "aws", "us-east-1", "on_demand", asked.hourly, asked.hourly * 10, None, {})]  # fmt: skip
    [rec] = rightsizing([job], hours, pricer, window_days=30)
    fits = pricer.price(1.5 * 1.25, int(3 * GIB * 1.25))
    assert fits is not None and rec.details["to"] == fits.offer.instance_type
    assert rec.monthly_saving == pytest.approx((asked.hourly - fits.hourly) * 10 / 30 * 30.4)
    assert "ask for cpus" in rec.message
    already_small = record("TrainingJob", "small", {"resources": {"cpus": 2, "memory": 4 * GIB}},
                           {"usage": {"max_cpu_percent": 190.0, "peak_memory": 3.5 * GIB}}, uid="u2")  # fmt: skip
    assert rightsizing([already_small], hours, pricer, window_days=30) == []


def test_always_on_endpoints_get_a_commitment_with_its_break_even(pricer: Pricer) -> None:
    endpoint = record("Endpoint", "ep", {"variants": [{"name": "a", "replicas": {"min": 2},
                                                       "resources": {"cpus": 4, "memory": 16 * GIB}}]}, {})  # fmt: skip
    [rec] = commitments([endpoint], pricer)
    on_demand = pricer.price(4, 16 * GIB)
    assert on_demand is not None
    committed = pricer.hourly(on_demand.offer, f"commit_{rec.details['term_years']}y")
    assert committed is not None and committed < on_demand.hourly
    assert rec.details["break_even_utilization"] == pytest.approx(committed / on_demand.hourly)
    assert rec.monthly_saving == pytest.approx((on_demand.hourly - committed) * 2 * 730)
    serverless = record("Endpoint", "sl", {"variants": [{"name": "a", "replicas": {"min": 0}}]}, {})
    assert commitments([serverless], pricer) == []


def test_endpoints_without_traffic_are_flagged_idle(pricer: Pricer) -> None:
    status = {"variants": {"a": {"replicas": [{"id": "r1"}, {"id": "r2"}]}}}
    endpoint = record("Endpoint", "ep", {"variants": [{"name": "a", "resources": {"cpus": 2, "memory": 4 * GIB}}]},
                      status)  # fmt: skip
    now = 100_000.0
    [rec] = idle_endpoints([endpoint], {"ep": now - 7 * 3600}, pricer, now, idle_after=6 * 3600)
    assert "scale to zero" in rec.message and rec.details["idle_hours"] == pytest.approx(7)
    assert idle_endpoints([endpoint], {"ep": now - 60}, pricer, now, idle_after=6 * 3600) == []


def test_report_prices_the_same_time_on_each_cloud(pricer: Pricer) -> None:
    priced = pricer.price(4, 16 * GIB)
    assert priced is not None
    rows = [CostRecord("u1", "TrainingJob", "j", "attempt-1", 0, 3600, 3600, 1, priced.offer.instance_type, "aws",
                       "us-east-1", "on_demand", priced.hourly, priced.hourly, None, {"team": "v"})]  # fmt: skip
    report = build_report(rows, [], pricer.catalog, window_days=1, target="aws:us-east-1:on_demand")
    assert report["total"] == pytest.approx(priced.hourly)
    assert report["by_label"] == {"team=v": pytest.approx(priced.hourly)}
    clouds = report["on_each_cloud"]
    assert set(clouds) == {"aws", "gcp", "azure", "databricks"}
    assert clouds["aws"] <= priced.hourly + 1e-9  # the cheapest AWS region is no dearer than us-east-1
    assert clouds["databricks"] > clouds["aws"]  # DBUs on top of the VM
    savings = [lever["monthly_saving"] for lever in report["levers"]]
    assert len(savings) == 5 and savings == sorted(savings, reverse=True)  # the biggest lever first
