"""Endpoints and batch transforms from the CLI, as the README shows them: apply a YAML file whose model
path is relative to it, wait, invoke, describe, a bad request's one-line error, a batch transform with
its progress bar, delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tests.e2e.cli import ControlPlane, error_line, json_out, ok

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ENDPOINT = """\
kind: Endpoint
name: iris
variants:
  - model: ./iris-model        # relative to this file
    replicas: {min: 1, max: 2}
"""
BATCH = """\
kind: BatchTransformJob
name: score-iris
model: ./iris-model
input: ./iris.parquet
output: ./scored
batch_size: 50
join_input: all
"""


def _model_and_data(directory: Path) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    model = LogisticRegression(max_iter=500).fit(x, y)
    signature = infer_signature(x, model.predict(x))
    mlflow.sklearn.save_model(model, str(directory / "iris-model"), signature=signature,
                              serialization_format="cloudpickle")  # fmt: skip
    x.to_parquet(directory / "iris.parquet")


def test_endpoint_and_batch_transform_from_the_cli(
    own_plane: Callable[..., ControlPlane], tmp_path: Path, warm_dir: Path
) -> None:
    plane = own_plane(tmp_path / "home", STRATO_WARM_DIR=str(warm_dir))
    specs = tmp_path / "specs"
    specs.mkdir()
    _model_and_data(specs)
    (specs / "endpoint.yaml").write_text(ENDPOINT)
    (specs / "batch.yaml").write_text(BATCH)

    try:
        assert "Endpoint iris applied" in ok(plane.cli("apply", "-f", specs / "endpoint.yaml", cwd=tmp_path)).stdout
        assert "InService" in ok(plane.cli("endpoints", "wait", "iris", "--timeout", "120")).stdout
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[6.7, 3.0, 5.2, 2.3]]}}))
        answer = json_out(plane.cli("endpoints", "invoke", "iris", "-d", f"@{request}"))
        assert answer == {"predictions": [2]}
        error_line(plane.cli("endpoints", "invoke", "iris", "-d", "1,2,3", "--content-type", "text/csv"), "expected 4")
        listed = json_out(plane.cli("get", "endpoints", "-o", "json"))
        assert isinstance(listed, list) and [(e["name"], e["status"]["state"]) for e in listed] == [
            ("iris", "InService")
        ]
        described = ok(plane.cli("endpoints", "describe", "iris")).stdout
        assert "InService" in described and "default" in described
        assert listed[0]["spec"]["variants"][0]["model"] == str(specs / "iris-model")  # relative to the file

        ok(plane.cli("apply", "-f", specs / "batch.yaml", cwd=tmp_path))
        watched = ok(plane.cli("batch", "watch", "score-iris", "--timeout", "120"))
        assert "Completed: scored 150 rows (0 bad)" in watched.stdout
        scored = pd.concat(pd.read_parquet(p) for p in sorted((specs / "scored").glob("part-*.parquet")))
        assert list(scored["row"]) == list(range(150)) and set(COLUMNS) <= set(scored.columns)
    finally:
        plane.cli("delete", "endpoint", "iris")
    error_line(plane.cli("endpoints", "invoke", "nope", "-d", "{}"), "no endpoint 'nope'")
