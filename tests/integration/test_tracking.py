"""Experiment tracking on a real control plane with its managed MLflow server: the unmodified mlflow
client through Strato's address, every job an MLflow run (params, captured and direct metrics, system
metrics, outcome), tuning trials as child runs, and the MLflow server killed mid-job (restarted by the
control plane; nothing the job logged is lost)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import strato
from strato.client import Client
from strato.config import Settings
from strato.server import daemon
from tests.helpers import wait_until
from tests.integration.conftest import control_plane

pytestmark = pytest.mark.slow

mlflow = pytest.importorskip("mlflow")

JOB_SCRIPT = """\
import argparse, mlflow, pathlib, time
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--release", default="")
args = parser.parse_args()
for i in range(args.steps):
    if args.release and i == args.steps // 2:
        print("waiting for release", flush=True)
        while not pathlib.Path(args.release).exists():
            time.sleep(0.05)
    mlflow.log_metric("direct", i * args.lr, step=i)
    print(f"step {i} loss={1.0 / (i + 1):.4f}", flush=True)
mlflow.log_param("from_script", "yes")
"""


def _tracking(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/healthz", timeout=10).json()["tracking"])


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Client, str]]:
    home = tmp_path_factory.mktemp("tracking") / "home"
    with control_plane(home, tracking=True) as (settings, client):
        url = client.url
        wait_until(lambda: _tracking(url)["state"] == "ready", timeout=180, interval=0.2, what="MLflow ready")
        yield settings, client, url


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text(JOB_SCRIPT)
    return tmp_path / "code"


def _job(name: str, code: Path, **hyperparameters: Any) -> strato.TrainingJob:
    return strato.TrainingJob(
        name=name,
        code=str(code),
        command="python train.py",
        hyperparameters=hyperparameters,
        metric_definitions=[{"name": "train:loss", "regex": r"loss=([0-9.]+)"}],
        experiment="tracking-tests",
    )


def _ended(mlflow_client: Any, run_id: str) -> Any:
    """The run once the platform has ended it (its ``strato.state`` tag is written last)."""
    return wait_until(
        lambda: "strato.state" in (run := mlflow_client.get_run(run_id)).data.tags and run,
        timeout=30,
        what=f"run {run_id} to end",
    )


def _ended_run(url: str, client: Client, job: str) -> Any:
    return _ended(mlflow.MlflowClient(f"{url}/mlflow"), client.jobs.get(job).data["status"]["tracking"]["run_id"])


def test_unmodified_mlflow_client_through_strato(tracked: tuple[Settings, Client, str], tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    _, _, url = tracked
    mlflow.set_tracking_uri(f"{url}/mlflow")
    try:
        experiment_id = mlflow.create_experiment("client-proof")
        x, y = load_iris(return_X_y=True, as_frame=True)
        model = LogisticRegression(max_iter=300).fit(x, y)
        (tmp_path / "notes.txt").write_text("hello")
        big = os.urandom(3 * 1024 * 1024)  # over the proxy's buffer limit: streamed both ways
        (tmp_path / "weights.bin").write_bytes(big)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params({"max_iter": 300, "penalty": "l2"})
            for step in range(5):
                mlflow.log_metric("accuracy", step / 4, step=step)
            mlflow.log_artifact(str(tmp_path / "notes.txt"), "docs")
            mlflow.log_artifact(str(tmp_path / "weights.bin"), "weights")
            info = mlflow.sklearn.log_model(model, name="model", input_example=x.head(3))
        version = mlflow.register_model(info.model_uri, "iris-proof")
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("iris-proof", "champion", version.version)
        loaded = mlflow.pyfunc.load_model("models:/iris-proof@champion")
        assert list(loaded.predict(x.head(5))) == list(model.predict(x.head(5)))
        stored = client.get_run(run.info.run_id)
        assert stored.data.params == {"max_iter": "300", "penalty": "l2"}
        assert [m.value for m in client.get_metric_history(run.info.run_id, "accuracy")] == [0, 0.25, 0.5, 0.75, 1]
        assert [a.path for a in client.list_artifacts(run.info.run_id, "docs")] == ["docs/notes.txt"]
        fetched = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="weights/weights.bin", dst_path=str(tmp_path / "back")
        )
        assert Path(fetched).read_bytes() == big
        # The artifacts went through Strato's address into Strato's artifact store.
        settings = tracked[0]
        assert list((settings.home / "artifacts" / "mlflow").rglob("notes.txt"))
        ui = httpx.get(f"{url}/mlflow/", timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        # MLflow's UI is a single-page app: its scripts load from under /mlflow too.
        scripts = re.findall(r'src="([^"]+\.js)"', ui.text)
        assert scripts and all(src.startswith("/mlflow/") or not src.startswith("/") for src in scripts)
        asset = httpx.get(httpx.URL(f"{url}/mlflow/").join(scripts[0]), timeout=10)
        assert asset.status_code == 200 and len(asset.content) > 1000
    finally:
        mlflow.set_tracking_uri(None)


def test_every_job_is_an_mlflow_run(tracked: tuple[Settings, Client, str], code: Path) -> None:
    _, client, url = tracked
    client.jobs.submit(_job("tracked-job", code, lr=0.5, steps=3))
    job = client.jobs.wait("tracked-job", timeout=120)
    assert job.status == "Completed", job.message
    run = _ended_run(url, client, "tracked-job")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tracked-job"
    assert run.data.params == {"lr": "0.5", "steps": "3", "from_script": "yes"}
    metrics = run.data.metrics
    assert metrics["direct"] == 1.0  # logged by the script itself, into the job's run
    assert metrics["train:loss"] == pytest.approx(1 / 3, abs=1e-4)  # captured from the log by the platform
    assert metrics["strato/goodput"] == 1.0
    assert run.data.tags["strato.uid"] == job.data["uid"]
    assert run.data.tags["strato.state"] == "Completed"
    history = mlflow.MlflowClient(f"{url}/mlflow").get_metric_history(run.info.run_id, "train:loss")
    assert [h.value for h in history] == pytest.approx([1.0, 0.5, 1 / 3], abs=1e-4)
    assert mlflow.MlflowClient(f"{url}/mlflow").get_experiment(run.info.experiment_id).name == "tracking-tests"
    # Lineage, recorded by the platform: the code snapshot went into the job, the job is tracked as the run.
    graph = client.lineage.get("job", "tracked-job")
    relations = {(graph.node(e.src).kind, e.relation, graph.node(e.dst).kind) for e in graph.edges}
    assert relations == {("code", "code_of", "job"), ("job", "tracked_as", "run")}
    assert graph.node(f"run:{run.info.run_id}").name == "tracked-job"


def test_a_failed_job_is_a_failed_run(tracked: tuple[Settings, Client, str], tmp_path: Path) -> None:
    _, client, url = tracked
    (tmp_path / "fail.py").write_text("import sys\nprint('boom', flush=True)\nsys.exit(3)\n")
    client.jobs.submit(strato.TrainingJob(name="tracked-fail", code=str(tmp_path), command="python fail.py"))
    assert client.jobs.wait("tracked-fail", timeout=120).status == "Failed"
    run = _ended_run(url, client, "tracked-fail")
    assert run.info.status == "FAILED"
    assert run.data.tags["strato.state"] == "Failed"
    assert "exit code 3" in run.data.tags["strato.message"]


def test_tuning_trials_are_child_runs(tracked: tuple[Settings, Client, str], tmp_path: Path) -> None:
    _, client, url = tracked
    (tmp_path / "trial.py").write_text(
        "import argparse\nfrom strato import runtime\np = argparse.ArgumentParser()\n"
        "p.add_argument('--x', type=float)\nruntime.report(step=1, score=-(p.parse_args().x - 0.3) ** 2)\n"
    )
    spec = strato.TuningJob(
        name="tracked-tuning",
        template={"code": str(tmp_path), "command": "python trial.py"},
        search_space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        objective={"metric": "score", "direction": "maximize"},
        max_trials=2,
        max_parallel=2,
        seed=1,
    )
    client.tuning.submit(spec)
    tuning = client.tuning.wait("tracked-tuning", timeout=180)
    assert tuning.status == "Completed", tuning.message
    mlflow_client = mlflow.MlflowClient(f"{url}/mlflow")
    parent_id = tuning.data["status"]["tracking"]["run_id"]
    parent = _ended(mlflow_client, parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["strategy"] == "random"
    assert parent.data.metrics["best/objective"] == max(t["objective"] for t in tuning.trials())
    experiment = mlflow_client.get_experiment_by_name("tracked-tuning")
    children = mlflow_client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["tracked-tuning-0", "tracked-tuning-1"]
    assert all("x" in r.data.params for r in children)


def test_mlflow_server_killed_mid_job(tracked: tuple[Settings, Client, str], code: Path, tmp_path: Path) -> None:
    """The job keeps running while MLflow is down; the control plane restarts it; the script's client
    retries its calls and the platform forwards what it captured meanwhile: nothing is lost."""
    _, client, url = tracked
    release = tmp_path / "release"
    client.jobs.submit(_job("survives-mlflow", code, lr=1.0, steps=8, release=str(release)))
    wait_until(
        lambda: "waiting for release" in "".join(client.jobs.logs("survives-mlflow")), timeout=120, what="half way"
    )
    before = _tracking(url)
    os.killpg(before["pid"], signal.SIGKILL)
    release.write_text("go")  # the script logs its second half while MLflow is down or restarting
    job = client.jobs.wait("survives-mlflow", timeout=240)
    assert job.status == "Completed", job.message
    after = _tracking(url)
    assert after["restarts"] == before["restarts"] + 1 and after["pid"] != before["pid"]
    run = _ended_run(url, client, "survives-mlflow")
    mlflow_client = mlflow.MlflowClient(f"{url}/mlflow")
    direct = mlflow_client.get_metric_history(run.info.run_id, "direct")
    captured = mlflow_client.get_metric_history(run.info.run_id, "train:loss")
    assert sorted(m.step for m in direct) == list(range(8))
    assert len(captured) == 8


def test_mlflow_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with control_plane(tmp_path / "home", tracking=True, database_url=postgres_url) as (_, client):
        url = client.url
        wait_until(lambda: _tracking(url)["state"] == "ready", timeout=180, interval=0.2, what="MLflow ready")
        mlflow_client = mlflow.MlflowClient(f"{url}/mlflow")
        run = mlflow_client.create_run(mlflow_client.create_experiment("on-postgres"))
        mlflow_client.log_metric(run.info.run_id, "x", 1.5)
        assert mlflow_client.get_run(run.info.run_id).data.metrics == {"x": 1.5}
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        tables = set(
            conn.execute(
                sa.text("select table_name from information_schema.tables where table_schema = 'mlflow'")
            ).scalars()
        )
    engine.dispose()
    assert {"runs", "metrics", "experiments", "registered_models"} <= tables


def test_a_jobs_model_directory_becomes_an_mlflow_model(tracked: tuple[Settings, Client, str]) -> None:
    """A SageMaker-style job (model.joblib plus inference.py, no MLflow code) ends with a pyfunc model in
    its run that loads and predicts like the script's own model_fn/predict_fn."""
    import pandas as pd

    _, client, url = tracked
    example = Path(__file__).resolve().parents[2] / "examples" / "sagemaker-style"
    client.jobs.submit(
        strato.TrainingJob(name="packaged", code=str(example), command="python train.py", experiment="packaging")
    )
    job = client.jobs.wait("packaged", timeout=180)
    assert job.status == "Completed", job.message
    run = _ended_run(url, client, "packaged")
    mlflow.set_tracking_uri(f"{url}/mlflow")
    try:
        models = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
        assert len(models) == 1
        loaded = mlflow.pyfunc.load_model(models[0].model_uri)
        assert loaded.metadata.signature is not None
        rows = pd.DataFrame(
            [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
            columns=["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        )
        assert list(loaded.predict(rows)) == ["setosa", "virginica"]
    finally:
        mlflow.set_tracking_uri(None)


def test_a_killed_control_plane_adopts_its_mlflow_server(tmp_path: Path) -> None:
    """SIGKILL the control plane: its MLflow server keeps running, and the next control plane adopts it
    (same process, same data) instead of starting a second one; stopping the plane stops it."""
    home = tmp_path / "home"
    with control_plane(home, tracking=True) as (settings, client):
        wait_until(lambda: _tracking(client.url)["state"] == "ready", timeout=180, interval=0.2, what="MLflow ready")
        mlflow_pid = _tracking(client.url)["pid"]
        mlflow_client = mlflow.MlflowClient(f"{client.url}/mlflow")
        run_id = mlflow_client.create_run("0").info.run_id
        mlflow_client.log_metric(run_id, "before", 1.0)
        pid = daemon.read_info(settings).pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10)
    assert psutil.pid_exists(mlflow_pid)
    with control_plane(home, tracking=True) as (_, client):
        wait_until(lambda: _tracking(client.url)["state"] == "ready", timeout=60, interval=0.1, what="adopted")
        assert _tracking(client.url)["pid"] == mlflow_pid
        assert _tracking(client.url)["restarts"] == 0
        assert mlflow.MlflowClient(f"{client.url}/mlflow").get_run(run_id).data.metrics == {"before": 1.0}
    wait_until(lambda: not psutil.pid_exists(mlflow_pid) or psutil.Process(mlflow_pid).status() == "zombie", 30)
