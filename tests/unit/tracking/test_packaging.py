"""A job's model directory made an MLflow model in its run (strato.tracking.packaging), against a real
MLflow tracking store (SQLite, one per module; an experiment and a run per test): the decision order
(the script's own model, an MLflow model in the directory, a wrapped directory, nothing), what the
logged model predicts after ``mlflow.pyfunc.load_model``, and when it has a signature."""

from __future__ import annotations

import importlib.util
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from strato.tracking.packaging import PACKAGED_TAG, main, package_model

mlflow = pytest.importorskip("mlflow")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sagemaker-style"


def _example_train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sagemaker_style_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PositiveOnly:
    """A model that cannot predict on zeros (so no signature can be inferred from its features)."""

    n_features_in_ = 2

    def predict(self, data: Any) -> Any:
        values = np.asarray(data, dtype=float)
        if (values <= 0).any():
            raise ValueError("needs positive inputs")
        return np.log(values).sum(axis=1)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            yield mlflow.MlflowClient()
        finally:
            mlflow.set_tracking_uri(None)


@pytest.fixture
def run_id(tracking: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    artifacts = tmp_path_factory.mktemp("artifacts").as_uri()  # not ./mlruns in the working directory
    experiment = tracking.create_experiment(f"job-{uuid.uuid4().hex[:8]}", artifact_location=artifacts)
    return str(tracking.create_run(experiment).info.run_id)


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def tree(iris: pd.DataFrame) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris.drop(columns=["target"]), iris["target"])


def _features(iris: pd.DataFrame) -> pd.DataFrame:
    return iris.drop(columns=["target"]).iloc[::10]


def _logged_models(tracking: Any, run_id: str) -> list[Any]:
    run = tracking.get_run(run_id)
    found = tracking.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
    return list(found)


def test_a_joblib_model_with_feature_names_gets_a_signature_from_them(
    tmp_path: Path, tracking: Any, run_id: str, tree: Any, iris: pd.DataFrame
) -> None:
    joblib.dump(tree, tmp_path / "model.joblib")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.logged and result.source == "pyfunc"
    assert result.flavor == "python_function" and result.signature and not result.input_example
    assert "4 named features" in result.reason, result.reason
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    frame = _features(iris)
    np.testing.assert_array_equal(loaded.predict(frame), tree.predict(frame))
    assert loaded.metadata.get_input_schema().input_names() == list(frame.columns)
    (model,) = _logged_models(tracking, run_id)
    assert model.model_id == result.model_id and model.tags[PACKAGED_TAG] == "model_dir"
    assert str(model.status) == "READY"
    assert [o.model_id for o in tracking.get_run(run_id).outputs.model_outputs] == [model.model_id]

    again = package_model(tmp_path, None, run_id=run_id)  # a retried packaging logs nothing new
    assert again is not None and not again.logged and again.model_uri == result.model_uri
    assert "already packaged" in again.reason and len(_logged_models(tracking, run_id)) == 1


def test_requirements_are_pinned_from_what_is_installed(tmp_path: Path, run_id: str, tree: Any) -> None:
    joblib.dump(tree, tmp_path / "model.joblib")
    result = package_model(tmp_path, None, run_id=run_id)
    assert result is not None and result.model_uri
    requirements = Path(mlflow.pyfunc.get_model_dependencies(result.model_uri))
    pins = dict(line.split("==") for line in requirements.read_text().split())
    assert pins["mlflow"] == mlflow.__version__
    assert {"scikit-learn", "joblib", "cloudpickle"} <= set(pins)


def test_an_input_example_in_the_model_dir_gives_signature_and_example(
    tmp_path: Path, run_id: str, iris: pd.DataFrame
) -> None:
    _example_train().train(str(tmp_path))  # model.joblib (a pipeline), classes.json, input_example.json

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.signature and result.input_example, result
    assert "input_example.json" in result.reason
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    frame = _features(iris)
    np.testing.assert_array_equal(loaded.predict(frame), joblib.load(tmp_path / "model.joblib").predict(frame))
    assert loaded.input_example is not None and len(loaded.input_example) == 5


@pytest.mark.parametrize("where", ["job code", "model code dir"])
def test_inference_py_model_fn_and_predict_fn(tmp_path: Path, run_id: str, iris: pd.DataFrame, where: str) -> None:
    model_dir = tmp_path / "model"
    _example_train().train(str(model_dir))
    code_dir: Path | None = EXAMPLE
    if where == "model code dir":  # SageMaker's model.tar.gz layout: code/inference.py beside the model
        (model_dir / "code").mkdir()
        shutil.copy(EXAMPLE / "inference.py", model_dir / "code" / "inference.py")
        code_dir = None

    result = package_model(model_dir, code_dir, run_id=run_id)

    assert result is not None and result.source == "pyfunc" and result.signature and result.input_example
    assert "inference.py model_fn, inference.py predict_fn" in result.reason, result.reason
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    frame = _features(iris)
    classes = json.loads((model_dir / "classes.json").read_text())
    expected = [classes[i] for i in joblib.load(model_dir / "model.joblib").predict(frame)]
    assert list(loaded.predict(frame)) == expected
    assert loaded.metadata.get_output_schema().inputs[0].type.name == "string"


def test_a_model_fitted_without_feature_names_gets_a_tensor_signature(
    tmp_path: Path, run_id: str, iris: pd.DataFrame
) -> None:
    features = iris.drop(columns=["target"]).to_numpy()
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, iris["target"].to_numpy())
    joblib.dump(model, tmp_path / "model.pkl")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.signature and "4 unnamed features" in result.reason, result
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    assert loaded.metadata.signature.inputs.is_tensor_spec()
    np.testing.assert_array_equal(loaded.predict(features[::10]), model.predict(features[::10]))


def test_a_model_that_fails_on_zeros_is_logged_without_signature(tmp_path: Path, run_id: str) -> None:
    joblib.dump(PositiveOnly(), tmp_path / "model.joblib")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.logged and not result.signature
    assert "row of zeros failed" in result.reason and "needs positive inputs" in result.reason, result.reason
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    np.testing.assert_allclose(mlflow.pyfunc.load_model(result.model_uri).predict(data), np.log([3.0, 8.0]))


@pytest.mark.parametrize("layout", ["root", "subdirectory"])
def test_an_mlflow_model_in_the_model_dir_is_logged_as_it_is(
    tmp_path: Path, run_id: str, tree: Any, iris: pd.DataFrame, layout: str
) -> None:
    model_dir = tmp_path / "model"
    saved = model_dir if layout == "root" else model_dir / "sklearn-model"
    frame = _features(iris)
    mlflow.sklearn.save_model(
        tree,
        str(saved),
        input_example=frame.head(2),
        pip_requirements=["scikit-learn"],
        serialization_format="cloudpickle",
    )
    joblib.dump(tree, model_dir / "model.joblib")  # the MLmodel wins over a plain model file

    result = package_model(model_dir, None, run_id=run_id)

    assert result is not None and result.source == "mlmodel" and result.logged, result
    assert result.flavor == "sklearn" and result.signature and result.input_example
    assert ("at its root" if layout == "root" else "in sklearn-model/") in result.reason
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    np.testing.assert_array_equal(loaded.predict(frame), tree.predict(frame))
    assert loaded.metadata.run_id == run_id and loaded.metadata.model_id == result.model_id


def test_a_model_the_script_logged_is_left_alone(tmp_path: Path, tracking: Any, run_id: str, tree: Any) -> None:
    joblib.dump(tree, tmp_path / "model.joblib")
    with mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(
            tree, name="model", pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
        )

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.source == "script" and not result.logged
    assert result.model_uri == f"models:/{info.model_id}" and result.flavor == "sklearn"
    assert "the script logged its own model" in result.reason
    assert len(_logged_models(tracking, run_id)) == 1


def test_a_classic_run_artifact_model_counts_as_the_scripts(
    tmp_path: Path, tracking: Any, run_id: str, tree: Any
) -> None:
    mlflow.sklearn.save_model(
        tree, str(tmp_path / "saved"), pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
    )
    tracking.log_artifacts(run_id, str(tmp_path / "saved"), "model")
    joblib.dump(tree, tmp_path / "model.joblib")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.source == "script" and result.model_uri == f"runs:/{run_id}/model"
    assert not _logged_models(tracking, run_id)


def test_nothing_to_package(tmp_path: Path, tracking: Any, run_id: str) -> None:
    (tmp_path / "weights.npy").write_bytes(b"not a model")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.source == "none" and result.model_uri is None and not result.logged
    assert result.reason == f"nothing to package: {tmp_path} has no MLmodel, model.joblib/.pkl or inference.py"
    assert not _logged_models(tracking, run_id)


def test_a_model_file_that_does_not_load_is_not_logged(tmp_path: Path, tracking: Any, run_id: str) -> None:
    (tmp_path / "model.joblib").write_bytes(b"garbage")

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.source == "none" and "loading model.joblib failed" in result.reason
    assert not _logged_models(tracking, run_id)


def test_a_torch_module(tmp_path: Path, run_id: str) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    torch.save(module, tmp_path / "model.pt")
    (tmp_path / "input_example.json").write_text(json.dumps([{"a": 1.0, "b": 2.0, "c": 3.0}]))

    result = package_model(tmp_path, None, run_id=run_id)

    assert result is not None and result.signature and result.input_example, result
    data = pd.DataFrame({"a": [0.5, 1.0], "b": [0.0, 2.0], "c": [1.0, -1.0]})
    with torch.no_grad():
        expected = module(torch.tensor(data.to_numpy(), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(mlflow.pyfunc.load_model(result.model_uri).predict(data), expected, rtol=1e-6)


def test_the_command_line_prints_the_result(
    tmp_path: Path, run_id: str, tree: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    joblib.dump(tree, tmp_path / "model.joblib")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)

    assert main([str(tmp_path)]) == 0

    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["source"] == "pyfunc" and printed["model_uri"].startswith("models:/")
    assert main([str(tmp_path), "--run-id", "no-such-run"]) == 1
