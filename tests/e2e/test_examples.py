"""The examples a newcomer runs from the README work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_trains_and_reports(tmp_path: Path, warm_dir: Path) -> None:
    env = {**os.environ, "STRATO_HOME": str(tmp_path / "home"), "STRATO_PORT": "0"}
    env.pop("STRATO_URL", None)
    cli = [sys.executable, "-m", "strato.cli.main"]
    try:
        result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], env=env,
                                capture_output=True, text=True, timeout=420)
    finally:  # the endpoint's replicas would outlive the control plane (a restarted one re-adopts them)
        subprocess.run([*cli, "delete", "endpoint", "iris-quickstart"], env=env, capture_output=True, timeout=60)
        subprocess.run([*cli, "down", "--home", str(tmp_path / "home")], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The feature store: lake tables, a point-in-time training dataset, the online store materialized.
    assert "lake://iris_measurements@0: 300 rows" in out and "lake://iris_labels@0: 150 rows" in out
    assert "training dataset lake://iris_training@0: 150 rows; 75 labels recorded before" in out
    assert re.search(r"job iris-features-\S+ on lake://iris_training@0: Completed, accuracy 0\.\d+", out), out
    assert "materialized flower_measurements: 150 flowers into the online store" in out
    # The pipeline: prepare, train, gate, register and approve, batch score, deploy.
    assert re.search(r"pipeline run iris-quickstart-\S+: Succeeded", out), out
    for step in ("prepare", "train", "gate", "register", "score", "serve"):
        assert f"  {step}: Succeeded" in out
    assert "  too-weak: Skipped" in out
    assert ": Completed" in out
    assert "validation:accuracy = 0.9" in out
    assert "validation accuracy:" in out  # the log tail
    model = re.search(r"^model file://(\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert Path(model, "model.joblib").is_file()
    assert "registered models:/iris-quickstart/1 and approved (alias champion)" in out
    # The spot run: interrupted once by the simulated market, resumed from its checkpoint.
    assert re.search(r"spot job digits-spot-\S+: Completed after 2 attempts", out)
    assert "attempt 1: Interrupted" in out and "attempt 2: Succeeded" in out
    assert re.search(r"resumed from epoch [1-9]", out)
    # The cost report: what it cost, on each cloud and Databricks, and the biggest lever.
    assert re.search(r"cost of this quickstart at aws:us-east-1:on_demand: \$0\.\d+", out)
    assert re.search(r"on each cloud: aws \$\S+, gcp \$\S+, azure \$\S+, databricks \$\S+", out)
    assert "biggest lever: " in out
    # The approved model behind an endpoint, then a batch transform over the data set.
    assert re.search(r"endpoint http://127\.0\.0\.1:\d+/endpoints/iris-quickstart/invocations", out)
    assert "flowers 0, 75, 149 (features from the online store) -> classes [0, 1, 2]" in out
    assert re.search(r"batch transform iris-quickstart-\S+-score: Completed: scored 150 rows \(0 bad\)", out)
