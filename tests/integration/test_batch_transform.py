"""Batch transform jobs for real: worker processes started by the control plane score a Parquet input
into parts; a worker killed mid-run is restarted and no row is scored twice or skipped."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strato.batch.worker import merge_outputs
from strato.client import Client
from strato.config import Settings
from strato.errors import ErrorCode, StratoError
from strato.specs.batch_transform import BatchTransformJob
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    path = tmp_path_factory.mktemp("model") / "iris"
    signature = infer_signature(x, estimator.predict(x))
    mlflow.sklearn.save_model(estimator, str(path), signature=signature, serialization_format="cloudpickle")
    return path, estimator


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path / "home") as running:
        yield running


def rows(tmp_path: Path, n: int) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.uniform(0.1, 8.0, size=(n, 4)), columns=COLUMNS)
    frame["id"] = np.arange(n)
    path = tmp_path / "input.parquet"
    frame.to_parquet(path)
    return path, frame


def test_workers_score_every_row_once_with_input_joined(
    plane: tuple[Settings, Client], model: tuple[Path, object], tmp_path: Path
) -> None:
    _, client = plane
    path, frame = rows(tmp_path, 20_000)
    spec = BatchTransformJob(
        name="score", model=str(model[0]), input=str(path), output=str(tmp_path / "out"), batch_size=2_000,
        workers=2, join_input="all", resources={"cpus": 1, "memory": "1Gi"},
    )  # fmt: skip
    client.batch.submit(spec)
    job = client.batch.wait("score", timeout=180)
    status = job["status"]
    assert status["state"] == "Completed", status.get("message")
    assert status["progress"]["rows_done"] == 20_000 and status["progress"]["bad_rows"] == 0
    assert status["rows_per_second"] > 0 and status["usage"]["billed_seconds"] > 0
    assert "scored 20000 rows (0 bad)" in status["message"]
    out = merge_outputs(tmp_path / "out").to_pandas()
    assert list(out["id"]) == list(range(20_000))  # every row once, in input order, input columns kept
    expected = model[1].predict(frame[COLUMNS])  # type: ignore[attr-defined]
    assert (out["prediction"].to_numpy() == expected).all()


def test_a_killed_worker_restarts_and_skips_what_it_wrote(
    plane: tuple[Settings, Client], model: tuple[Path, object], tmp_path: Path
) -> None:
    settings, client = plane
    path, _ = rows(tmp_path, 400_000)
    out = tmp_path / "out"
    spec = BatchTransformJob(name="crashy", model=str(model[0]), input=str(path), output=str(out), batch_size=4_000)
    client.batch.submit(spec)
    wait_until(lambda: list(out.glob("part-*.parquet")), 120, interval=0.01, what="a first part written")
    task = client.batch.get("crashy")["status"]["workers"][0]["task_id"]
    pid = json.loads((settings.home / "runs" / task / "pid.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # as an OOM kill or a lost machine would
    job = client.batch.wait("crashy", timeout=180)
    status = job["status"]
    assert status["state"] == "Completed", status.get("message")
    attempts = status["workers"][0]["attempts"]
    assert len(attempts) == 2 and attempts[0]["exit_code"] != 0
    scored = merge_outputs(out).to_pandas()
    assert list(scored["row"]) == list(range(400_000))  # none twice, none skipped


def test_bad_input_is_refused_at_apply_and_a_broken_model_fails_with_its_reason(
    plane: tuple[Settings, Client], tmp_path: Path
) -> None:
    _, client = plane
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module_anywhere}}\n")
    with pytest.raises(StratoError, match=r"input .*missing\.parquet does not exist") as refused:
        client.batch.submit(BatchTransformJob(name="nope", model=str(broken), input=str(tmp_path / "missing.parquet")))
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
    path, _ = rows(tmp_path, 100)
    client.batch.submit(BatchTransformJob(name="broken", model=str(broken), input=str(path), retry={"max_attempts": 1}))
    job = client.batch.wait("broken", timeout=120)
    assert job["status"]["state"] == "Failed"
    assert "no_such_module_anywhere" in job["status"]["message"]


def test_a_delta_table_in_and_a_delta_table_out(
    plane: tuple[Settings, Client], model: tuple[Path, object], tmp_path: Path
) -> None:
    from deltalake import DeltaTable, write_deltalake

    _, client = plane
    _, frame = rows(tmp_path, 3_000)
    table = tmp_path / "features"
    write_deltalake(str(table), frame.iloc[:1_000])
    write_deltalake(str(table), frame.iloc[1_000:], mode="append")  # version 1: both appends
    spec = BatchTransformJob(
        name="delta", model=str(model[0]), input=str(table), output=str(tmp_path / "scored"), batch_size=500,
        join_input=["id"], output_format="delta",
    )  # fmt: skip
    client.batch.submit(spec)
    wait_until(lambda: "input_version" in client.batch.get("delta")["status"], 60, what="the input version pinned")
    write_deltalake(str(table), frame.iloc[:10], mode="append")  # version 2: a restarted worker must not see it
    status = client.batch.wait("delta", timeout=180)["status"]
    assert status["state"] == "Completed", status.get("message")
    assert status["input_version"] == 1 and status["output_version"] == 0
    scored = DeltaTable(str(tmp_path / "scored")).to_pandas().sort_values("id")
    assert list(scored["id"]) == list(range(3_000))  # the pinned version's rows, each once
    expected = model[1].predict(frame[COLUMNS])  # type: ignore[attr-defined]
    assert (scored["prediction"].to_numpy() == expected).all()
