"""A pipeline from training to serving on a control plane with its MLflow server: train, gate on the
validation metric, register and approve the model, batch-score a file with it, and deploy it as an
endpoint that answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pandas as pd
from sklearn.datasets import load_iris

from strato.specs import load_yaml_text
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn-iris"

PIPELINE = """
kind: Pipeline
name: ship
steps:
  - name: train
    type: training
    job:
      code: ./code
      command: python train.py
      inputs: {train: ./data}
      metric_definitions: [{name: "validation:accuracy", regex: "validation accuracy: ([0-9.]+)"}]
  - name: gate
    type: condition
    if: "steps.train.metrics['validation:accuracy'] >= 0.8"
    then: [register]
  - name: register
    type: register
    model: iris-pipeline
    step: train
    approve: true
  - name: score
    type: batch_transform
    transform: {model: "{{ steps.register.outputs.model_uri }}", input: "INPUT", batch_size: 50}
  - name: serve
    type: deploy
    endpoint: {name: iris-pipeline, variants: [{model: "{{ steps.register.outputs.model_uri }}"}]}
"""


def test_train_register_score_and_deploy(tmp_path: Path, warm_dir: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "code", ignore=shutil.ignore_patterns("data", "*.yaml"))
    (tmp_path / "data").mkdir()
    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "data" / "iris.csv", index=False)
    features = frame.drop(columns=["target"])
    features.to_parquet(tmp_path / "score.parquet")
    spec = load_yaml_text(PIPELINE.replace("INPUT", str(tmp_path / "score.parquet")))[0]
    with control_plane(tmp_path / "home", tracking=True) as (_, client):
        try:
            client.apply(spec, base_dir=tmp_path)
            client.pipelines.run("ship", name="ship-1")
            done = client.pipelines.wait("ship-1", timeout=600)
            steps = done["status"]["steps"]
            assert done["status"]["state"] == "Succeeded", {n: (s["state"], s.get("message")) for n, s in steps.items()}
            assert steps["register"]["outputs"] == {"model_uri": "models:/iris-pipeline/1", "version": "1"}
            assert client.models.get("iris-pipeline", "1")["status"] == "Approved"
            produced = client.lineage.get("pipeline_run", "ship-1", direction="downstream")
            assert {"iris-pipeline/1", "iris-pipeline"} <= {node.name for node in produced.nodes}
            scored = pd.read_parquet(steps["score"]["outputs"]["output"])
            assert len(scored) == 150
            url = steps["serve"]["outputs"]["url"]
            first = features.iloc[[0]].values.tolist()
            request = {"dataframe_split": {"columns": list(features.columns), "data": first}}
            answer = httpx.post(url, json=request, timeout=60)
            assert answer.status_code == 200 and answer.json()["predictions"] == [0]
        finally:
            if client.list("endpoints"):
                client.delete("endpoints", "iris-pipeline")
                wait_until(lambda: not client.list("endpoints"), 60, what="endpoint deleted")
