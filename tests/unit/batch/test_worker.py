"""The batch transform worker: Parquet and CSV input, predictions in input order, joins, several workers, bad
rows, a worker killed mid-job and restarted (every row exactly once), and the errors a user can fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from strato.batch.worker import main, merge_outputs, score_parts
from strato.errors import InvalidArgument
from strato.serving.model import LoadedModel

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
WORKER = [sys.executable, "-m", "strato.batch.worker"]


class Picky(mlflow.pyfunc.PythonModel):
    """a + b, refusing the whole call when any row has a negative ``a``."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        negative = model_input["a"] < 0
        if negative.any():
            raise ValueError(f"a must not be negative, got {model_input['a'][negative].iloc[0]}")
        return (model_input["a"] + model_input["b"]).to_numpy()


@dataclass
class Iris:
    path: Path
    loaded: LoadedModel
    estimator: Any


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    path = tmp_path_factory.mktemp("models") / "iris"
    signature = infer_signature(x, y)  # cloudpickle: loading a skops model imports torch and every estimator (seconds)
    mlflow.sklearn.save_model(
        estimator, str(path), signature=signature, pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
    )
    return Iris(path, LoadedModel.load(path, str(path)), estimator)


@pytest.fixture(scope="module")
def picky(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    from mlflow.models import infer_signature

    path = tmp_path_factory.mktemp("models") / "picky"
    example = pd.DataFrame({"a": [1.0], "b": [2.0]})
    signature = infer_signature(example, np.array([3.0]))
    mlflow.pyfunc.save_model(str(path), python_model=Picky(), signature=signature, pip_requirements=["mlflow"])
    return LoadedModel.load(path, str(path))


def iris_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` noisy iris rows (the four features) and an ``id`` column the model does not take."""
    from sklearn.datasets import load_iris

    x = load_iris(as_frame=True).data
    rng = np.random.default_rng(seed)
    frame = x.iloc[rng.integers(0, len(x), n)].reset_index(drop=True) + rng.normal(0, 0.3, (n, 4))
    frame["id"] = [f"r{i}" for i in range(n)]
    return frame


def errors_of(output: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for p in sorted((output / "errors").glob("*.jsonl")) for line in p.read_text().splitlines()
    ]


def test_parquet_input_is_predicted_in_input_order(tmp_path: Path, iris: Iris) -> None:
    frame = iris_frame(5_000)
    data = tmp_path / "in.parquet"
    frame.to_parquet(data, row_group_size=700)  # parts of 1000 rows cross row groups
    seen: list[dict[str, int]] = []

    summary = score_parts(iris.loaded, data, tmp_path / "out", batch_size=1_000, on_progress=seen.append)

    merged = merge_outputs(tmp_path / "out")
    assert merged.column_names == ["row", "prediction"]
    np.testing.assert_array_equal(merged["row"].to_numpy(), np.arange(5_000))
    np.testing.assert_array_equal(merged["prediction"].to_numpy(), iris.estimator.predict(frame[FEATURES]))
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [f"part-0000{k}.parquet" for k in range(5)]
    assert seen[0] == {"parts_done": 1, "parts_total": 5, "rows_done": 1_000, "rows_total": 5_000, "bad_rows": 0}
    assert seen[-1] == {"parts_done": 5, "parts_total": 5, "rows_done": 5_000, "rows_total": 5_000, "bad_rows": 0}
    assert (summary.parts_done, summary.rows_scored, summary.bad_rows, summary.parts_skipped) == (5, 5_000, 0, 0)
    assert summary.rows_per_second > 0 and summary.seconds > 0
    progress = json.loads((tmp_path / "out" / "_progress" / "worker-0.json").read_text())
    assert progress["rows_done"] == 5_000 and progress["rows_per_second"] > 0
    assert not list((tmp_path / "out").rglob("*.tmp")) and not errors_of(tmp_path / "out")


def test_csv_input_with_join_all_keeps_the_input_columns(tmp_path: Path, iris: Iris) -> None:
    frame = iris_frame(2_500, seed=1)
    data = tmp_path / "in.csv"
    frame.to_csv(data, index=False)

    summary = score_parts(iris.loaded, data, tmp_path / "out", batch_size=1_000, join="all")

    merged = merge_outputs(tmp_path / "out").to_pandas()
    assert list(merged.columns) == ["row", "prediction", *FEATURES, "id"]
    np.testing.assert_array_equal(merged["prediction"], iris.estimator.predict(frame[FEATURES]))
    pd.testing.assert_frame_equal(merged[[*FEATURES, "id"]], frame, check_dtype=False)
    assert (summary.parts_total, summary.rows_total, summary.rows_done) == (3, 2_500, 2_500)


def test_join_named_columns_and_a_name_already_taken(tmp_path: Path, iris: Iris) -> None:
    frame = iris_frame(300).assign(prediction=1.5)
    frame.to_parquet(tmp_path / "in.parquet")

    score_parts(iris.loaded, tmp_path / "in.parquet", tmp_path / "out", batch_size=100, join="id,prediction")

    merged = merge_outputs(tmp_path / "out")
    assert merged.column_names == ["row", "prediction", "id", "input_prediction"]
    assert merged["id"].to_pylist() == frame["id"].tolist()
    with pytest.raises(InvalidArgument, match="no such input column"):
        score_parts(iris.loaded, tmp_path / "in.parquet", tmp_path / "other", batch_size=100, join="id,nope")


def test_three_workers_over_a_directory_score_every_row_once(tmp_path: Path, iris: Iris) -> None:
    frame = iris_frame(2_500, seed=2)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (start, end) in enumerate([(0, 900), (900, 1_700), (1_700, 2_500)]):  # read in name order
        frame.iloc[start:end].to_parquet(folder / f"f{i}.parquet", row_group_size=333)
    (folder / "_SUCCESS").write_text("")

    summaries = [
        score_parts(iris.loaded, folder, tmp_path / "out", batch_size=200, workers=3, worker_index=i) for i in range(3)
    ]

    assert [s.parts_total for s in summaries] == [5, 4, 4] and sum(s.rows_done for s in summaries) == 2_500
    merged = merge_outputs(tmp_path / "out")
    np.testing.assert_array_equal(merged["row"].to_numpy(), np.arange(2_500))
    np.testing.assert_array_equal(merged["prediction"].to_numpy(), iris.estimator.predict(frame[FEATURES]))


def test_bad_rows_are_reported_and_the_rest_scored(tmp_path: Path, picky: LoadedModel) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"b": rng.normal(size=1_000), "a": rng.uniform(1, 2, 1_000), "note": "x"})
    negative = [3, 250, 251, 999]
    frame.loc[negative, "a"] = -1.0
    frame.to_parquet(tmp_path / "in.parquet")

    summary = score_parts(picky, tmp_path / "in.parquet", tmp_path / "out", batch_size=300)

    errors = errors_of(tmp_path / "out")
    assert [e["row"] for e in errors] == negative
    assert all(e["error"] == "ValueError: a must not be negative, got -1.0" for e in errors)
    assert sorted(p.name for p in (tmp_path / "out" / "errors").iterdir()) == ["part-00000.jsonl", "part-00003.jsonl"]
    predictions = merge_outputs(tmp_path / "out")["prediction"].to_numpy(zero_copy_only=False)
    good = ~frame.index.isin(negative)
    assert np.isnan(predictions[negative]).all()
    np.testing.assert_allclose(predictions[good], (frame["a"] + frame["b"])[good])
    assert (summary.bad_rows, summary.rows_done) == (4, 1_000)


def test_a_missing_column_makes_the_parts_rows_bad(tmp_path: Path, picky: LoadedModel) -> None:
    pd.DataFrame({"a": np.arange(150.0)}).to_parquet(tmp_path / "in.parquet")

    summary = score_parts(picky, tmp_path / "in.parquet", tmp_path / "out", batch_size=100)

    errors = errors_of(tmp_path / "out")
    assert [e["row"] for e in errors] == list(range(150)) and summary.bad_rows == 150
    assert errors[0]["error"] == "missing column 'b' (the model takes: a, b)"
    assert merge_outputs(tmp_path / "out")["prediction"].null_count == 150


def test_an_unparseable_csv_value_fails_only_its_row(tmp_path: Path, iris: Iris) -> None:
    frame = iris_frame(400, seed=5)
    column = FEATURES[2]
    frame[column] = frame[column].astype(object)
    frame.loc[123, column] = "abc"
    frame.to_csv(tmp_path / "in.csv", index=False)

    score_parts(iris.loaded, tmp_path / "in.csv", tmp_path / "out", batch_size=128)

    assert errors_of(tmp_path / "out") == [{"row": 123, "error": f"column {column!r}: expected a number, got 'abc'"}]
    merged = merge_outputs(tmp_path / "out")
    rest = frame.drop(index=123)[FEATURES].astype(float)
    assert merged["prediction"][123].as_py() is None
    np.testing.assert_array_equal(merged["prediction"].drop_null().to_numpy(), iris.estimator.predict(rest))


def test_prediction_shapes(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}).to_parquet(tmp_path / "in.parquet")
    matrix = SimpleNamespace(predict=lambda x: x.to_numpy() * 2, schema=None)
    frame = SimpleNamespace(predict=lambda x: pd.DataFrame({"label": ["p", "q", "r"], "score": x["a"]}), schema=None)

    score_parts(matrix, tmp_path / "in.parquet", tmp_path / "m", prediction_column="y")
    score_parts(frame, tmp_path / "in.parquet", tmp_path / "f")

    assert merge_outputs(tmp_path / "m").to_pydict() == {
        "row": [0, 1, 2],
        "y_0": [2.0, 4.0, 6.0],
        "y_1": [8.0, 10.0, 12.0],
    }
    assert merge_outputs(tmp_path / "f").to_pydict() == {
        "row": [0, 1, 2],
        "label": ["p", "q", "r"],
        "score": [1.0, 2.0, 3.0],
    }


def test_leftovers_of_a_killed_run_are_replaced(tmp_path: Path, iris: Iris) -> None:
    iris_frame(300).to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out"
    score_parts(iris.loaded, tmp_path / "in.parquet", out, batch_size=100)
    expected = merge_outputs(out)
    # killed after part 1's errors file was in place and while its part file was being written
    (out / "part-00001.parquet").unlink()
    (out / "errors" / "part-00001.jsonl").write_text('{"row": 100, "error": "stale"}\n')
    (out / ".part-00001.parquet.999.tmp").write_bytes(b"PAR1 half")

    summary = score_parts(iris.loaded, tmp_path / "in.parquet", out, batch_size=100)

    assert (summary.parts_skipped, summary.rows_scored, summary.parts_done, summary.bad_rows) == (2, 100, 3, 0)
    assert merge_outputs(out).equals(expected)
    assert not (out / "errors" / "part-00001.jsonl").exists() and not list(out.rglob("*.tmp"))
    with pytest.raises(InvalidArgument, match="same --batch-size"):
        score_parts(iris.loaded, tmp_path / "in.parquet", out, batch_size=50)


def test_a_killed_worker_resumes_and_scores_every_row_exactly_once(
    tmp_path: Path, iris: Iris, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "in.parquet", tmp_path / "out"
    iris_frame(200_000, seed=6).to_parquet(data, row_group_size=30_000)
    arguments = ["--model", str(iris.path), "--input", str(data), "--output", str(out), "--batch-size", "5000"]
    with open(tmp_path / "stderr", "wb") as stderr:
        first = subprocess.Popen([*WORKER, *arguments], stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert first.stdout is not None
        for line in first.stdout:  # its first part is in place: kill it at once, mid-job
            if line.startswith("[strato] progress "):
                break
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    written = sorted(out.glob("part-*.parquet"))
    assert 1 <= len(written) < 40, (tmp_path / "stderr").read_text()

    assert main(arguments) == 0  # run again (in this process: a second interpreter start costs seconds)

    lines = capsys.readouterr().out.splitlines()
    progress = [json.loads(line.split(" ", 2)[2]) for line in lines if line.startswith("[strato] progress ")]
    assert progress[0]["parts_done"] == len(written) + 1
    assert progress[-1] == {
        "parts_done": 40,
        "parts_total": 40,
        "rows_done": 200_000,
        "rows_total": 200_000,
        "bad_rows": 0,
    }
    done = json.loads(lines[-1].removeprefix("[strato] batch-done "))
    assert (done["parts_skipped"], done["rows_scored"]) == (len(written), 200_000 - 5_000 * len(written))
    assert done["rows_per_second"] > 0
    resumed = merge_outputs(out)
    np.testing.assert_array_equal(resumed["row"].to_numpy(), np.arange(200_000))
    score_parts(iris.loaded, data, tmp_path / "clean", batch_size=5_000)
    assert resumed.equals(merge_outputs(tmp_path / "clean"))
    assert not list(out.rglob("*.tmp"))


def test_a_missing_input_is_a_failure_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.parquet"
    run = subprocess.run(
        [*WORKER, "--model", str(tmp_path), "--input", str(missing), "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stdout.startswith('[strato] failure-reason "input ') and str(missing) in run.stdout


def test_other_user_errors_are_failure_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pa.table({"a": [1.0]}).to_pandas().to_parquet(tmp_path / "in.parquet")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01 no idea")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module_anywhere}}\n")
    out = str(tmp_path / "out")

    def reason(*args: str) -> str:
        assert main(["--output", out, *args]) == 2
        line = capsys.readouterr().out.strip()
        assert line.startswith("[strato] failure-reason ")
        return str(json.loads(line.removeprefix("[strato] failure-reason ")))

    assert "no_such_module_anywhere" in reason("--model", str(broken), "--input", str(tmp_path / "in.parquet"))
    assert "no MLmodel file" in reason("--model", str(tmp_path), "--input", str(tmp_path / "in.parquet"))
    assert "worker index" in reason("--model", str(broken), "--input", str(tmp_path / "in.parquet"), "--workers", "2",
                                    "--worker-index", "2")  # fmt: skip
    assert "--input-format" in reason("--model", str(broken), "--input", str(tmp_path / "data.bin"))
    assert "not a readable Parquet" in reason("--model", str(broken), "--input", str(tmp_path / "data.bin"),
                                              "--input-format", "parquet")  # fmt: skip
