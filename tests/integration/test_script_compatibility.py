"""Scripts written the way SageMaker's and Vertex AI's own examples are run unchanged on Strato."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib

from strato.client import Client
from strato.config import Settings
from strato.specs import TrainingJob

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sklearn-iris"
sys.path.insert(0, str(EXAMPLES))
from prepare_data import write_iris  # noqa: E402


def local_path(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_sagemaker_script_mode_example(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    write_iris(tmp_path / "data")
    job = client.jobs.submit(
        TrainingJob(
            name="sm-iris",
            code=str(EXAMPLES),
            command="python train.py",
            hyperparameters={"max_leaf_nodes": 4},
            inputs={"train": str(tmp_path / "data")},
            metric_definitions=[
                {"name": "validation:accuracy", "regex": r"validation accuracy: ([0-9.]+)"},
                {"name": "train:accuracy", "regex": r"train_accuracy=([0-9.]+)"},
            ],
        )
    )
    job.wait(timeout=180)
    assert job.status == "Completed", job.message
    assert job.metrics["validation:accuracy"] > 0.8
    assert len(client.jobs.metric_history("sm-iris", "train:accuracy")) == 3
    model = joblib.load(local_path(job.model_uri) / "model.joblib")
    assert model.get_params()["max_leaf_nodes"] == 4  # the hyperparameter arrived as --max_leaf_nodes 4
    evaluation = json.loads((local_path(job.data["status"]["output_uri"]) / "evaluation.json").read_text())
    assert (
        evaluation["accuracy"] == job.metrics["validation:accuracy"]
        or abs(evaluation["accuracy"] - job.metrics["validation:accuracy"]) < 1e-4
    )


VERTEX_SCRIPT = """
import json, os, pathlib, sys
import pandas as pd
from sklearn.linear_model import LogisticRegression
import joblib

# Vertex AI custom training: data and model locations come from AIP_* variables.
frame = pd.read_csv(os.environ["AIP_TRAINING_DATA_URI"])
model = LogisticRegression(max_iter=500).fit(frame.drop(columns=["target"]), frame["target"])
model_dir = pathlib.Path(os.environ["AIP_MODEL_DIR"])
joblib.dump(model, model_dir / "model.joblib")
env = {k: v for k, v in os.environ.items() if k.startswith(("SM_", "AIP_", "STRATO_", "CLOUD_ML", "CLUSTER"))}
files = sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))
config = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json").read_text()
(model_dir / "env.json").write_text(json.dumps({"env": env, "argv": sys.argv[1:], "train_files": files,
                                                "hyperparameters.json": json.loads(config)}))
for name in ("AIP_CHECKPOINT_DIR", "AIP_TENSORBOARD_LOG_DIR"):
    assert pathlib.Path(os.environ[name]).is_dir(), name
print("trained", model.score(frame.drop(columns=["target"]), frame["target"]))
"""


def test_vertex_ai_script_and_full_environment(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    code = tmp_path / "vertex code"
    code.mkdir()
    (code / "task.py").write_text(VERTEX_SCRIPT)
    write_iris(tmp_path / "training data")
    job = client.jobs.submit(
        TrainingJob(
            name="vertex-iris",
            code=str(code),
            command="python task.py",
            hyperparameters={"lr": 0.1, "layers": [64, 32], "flag": True},
            inputs={"train": str(tmp_path / "training data"), "test": str(tmp_path / "training data")},
        )
    )
    job.wait(timeout=180)
    assert job.status == "Completed", job.message
    dumped = json.loads((local_path(job.model_uri) / "env.json").read_text())
    env, argv = dumped["env"], dumped["argv"]
    assert argv == ["--lr", "0.1", "--layers", "[64, 32]", "--flag", "True"]
    assert json.loads(env["SM_HPS"]) == {"lr": 0.1, "layers": [64, 32], "flag": True}
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert dumped["train_files"] == ["iris.csv"]
    assert env["AIP_TRAINING_DATA_URI"].endswith("iris.csv") and "AIP_TEST_DATA_URI" in env
    assert env["SM_HOSTS"] == '["algo-1"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert int(env["SM_NUM_CPUS"]) >= 1 and env["SM_NUM_GPUS"] == "0"
    assert env["SM_HP_LR"] == "0.1"
    for name in (
        "SM_MODEL_DIR",
        "SM_OUTPUT_DATA_DIR",
        "AIP_MODEL_DIR",
        "AIP_CHECKPOINT_DIR",
        "STRATO_CHECKPOINT_DIR",
        "AIP_TENSORBOARD_LOG_DIR",
        "SM_INPUT_CONFIG_DIR",
        "SM_TRAINING_ENV",
    ):
        assert env[name], name
    assert dumped["hyperparameters.json"] == {"lr": "0.1", "layers": "[64, 32]", "flag": "True"}


def test_entrypoint_function_gets_hyperparameters(shared_platform: tuple[Settings, Client], tmp_path: Path) -> None:
    _, client = shared_platform
    code = tmp_path / "pkg"
    code.mkdir()
    (code / "trainer.py").write_text(
        "import os, pathlib\n"
        "from strato import runtime\n"
        "def main(alpha, epochs):\n"
        "    for step in range(epochs):\n"
        "        runtime.report(step=step, loss=alpha / (step + 1))\n"
        "    (runtime.model_dir() / 'weights.txt').write_text(str(alpha * epochs))\n"
    )
    job = client.jobs.submit(
        TrainingJob(
            name="entry", code=str(code), entrypoint="trainer:main", hyperparameters={"alpha": 0.5, "epochs": 3}
        )
    )
    job.wait(timeout=120)
    assert job.status == "Completed", job.message
    assert (local_path(job.model_uri) / "weights.txt").read_text() == "1.5"
    history = client.jobs.metric_history("entry", "loss")
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
