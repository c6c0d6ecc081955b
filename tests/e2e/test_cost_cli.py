"""``strato cost`` as a user runs it: catalog search, quotes for a request and for a spec file, one-line
errors for impossible and unknown asks, a refresh that cannot reach the price APIs leaving the catalog as
it was, and the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.cli import ControlPlane, error_line, json_out, ok


def test_cost_from_the_cli(tmp_path: Path, own_plane: Callable[..., ControlPlane]) -> None:
    plane = own_plane(tmp_path / "home")

    found = json_out(plane.cli("cost", "catalog", "search", "--gpu", "A100", "--cloud", "gcp", "-o", "json"))
    offers = found["offers"]  # type: ignore[index]
    assert offers and all(o["cloud"] == "gcp" and o["gpu_model"].startswith("A100") for o in offers)
    assert [o["on_demand"] for o in offers] == sorted(o["on_demand"] for o in offers)
    table = ok(plane.cli("cost", "catalog", "search", "--gpu", "h100", "--limit", "3")).stdout
    assert "H100" in table and "of" in table

    ask = ("--cpus", "8", "--memory", "32Gi", "--hours", "6h", "--limit", "500")
    quote = json_out(plane.cli("cost", "quote", *ask, "-o", "json"))
    options = quote["options"]  # type: ignore[index]
    costs = [o["expected_cost"] for o in options]
    assert costs == sorted(costs) and {o["offer"]["cloud"] for o in options} >= {"aws", "gcp", "azure"}
    assert all(o["offer"]["vcpus"] >= 8 and o["offer"]["memory_gib"] >= 32 for o in options)

    (tmp_path / "job.yaml").write_text(
        "kind: TrainingJob\nname: big\ncommand: python train.py\nresources: {cpus: 4, memory: 16Gi, gpus: 1}\n"
        "max_runtime: 4h\nspot: {enabled: true}\n"
    )
    from_spec = json_out(plane.cli("cost", "quote", "-f", tmp_path / "job.yaml", "-o", "json"))
    first = from_spec["options"][0]  # type: ignore[index]
    assert first["offer"]["gpu_count"] >= 1 and from_spec["request"]["hours"] == 4  # type: ignore[index]

    (tmp_path / "flow.yaml").write_text(
        "kind: Pipeline\nname: flow\nsteps:\n"
        "  - {name: prep, type: processing, command: python prep.py, resources: {cpus: 2, memory: 4Gi}, timeout: 1h}\n"
        "  - {name: train, type: training, job: {command: python train.py, resources: {cpus: 8, memory: 32Gi}},"
        " timeout: 6h, after: [prep]}\n"
    )
    plan = json_out(plane.cli("cost", "quote", "-f", tmp_path / "flow.yaml", "-o", "json"))
    assert [s["step"] for s in plan["steps"]] == ["prep", "train"]  # type: ignore[index]
    assert plan["steps"][1]["request"]["hours"] == 6  # type: ignore[index]
    assert plan["total_expected_cost"] == sum(s["option"]["expected_cost"] for s in plan["steps"])  # type: ignore[index]
    assert "pipeline flow: $" in ok(plane.cli("cost", "quote", "-f", tmp_path / "flow.yaml")).stdout

    error_line(plane.cli("cost", "quote", "--gpus", "16", "--gpu-type", "H100"), "the largest is 8")
    error_line(plane.cli("cost", "quote", "--gpus", "1", "--gpu-type", "A1000"), "unknown GPU type 'A1000'")
    error_line(plane.cli("cost", "quote", "--hours", "-2h"), "--hours")

    # No network here: the refresh reports what failed, exits 1, and the catalog in use is unchanged.
    before = json_out(plane.cli("cost", "catalog", "search", "--cloud", "aws", "--limit", "1000", "-o", "json"))
    failed = plane.cli("cost", "catalog", "update", "--provider", "azure")
    assert failed.returncode == 1 and "azure" in (failed.stdout + failed.stderr).lower()
    after = json_out(plane.cli("cost", "catalog", "search", "--cloud", "aws", "--limit", "1000", "-o", "json"))
    assert before == after

    report = ok(plane.cli("cost", "report", "--since", "7d")).stdout
    assert "Spend over 7d at aws:us-east-1:on_demand" in report and "days old" in report  # the stale warning
    levers = json_out(plane.cli("cost", "report", "--since", "7d", "-o", "json"))["levers"]  # type: ignore[index]
    assert len(levers) == 5 and "where it runs (cloud and region)" in {lever["lever"] for lever in levers}
    error_line(plane.cli("cost", "report", "--since", "-1d"), "--since")
