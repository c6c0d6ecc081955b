"""The quickstart story so far: load a bundled data set into lake tables, define features, build a
point-in-time training dataset and materialize the online store; train a real scikit-learn model as a
managed training job (an MLflow run), register its model and approve it against an approval policy,
deploy it as an endpoint and invoke it with features read from the online store, score the data set
with a batch transform job, then train on (simulated) spot capacity, get interrupted once, and resume
from the checkpoint; and the cost report prices all of it on each cloud.

    make quickstart        # or: .venv/bin/python examples/quickstart.py

It starts the embedded control plane in the workspace home (``~/.strato``, or ``$STRATO_HOME``) if
none runs, writes scikit-learn's bundled iris data set as a training channel (no download), submits
``sklearn-iris/train.py`` (a SageMaker script-mode script, unchanged) and prints the job's status,
metrics, log tail and model location. Then it runs ``spot/train.py`` as a spot job that the simulated
market interrupts once, and prints its attempts, checkpoints and goodput.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from sklearn.datasets import load_iris

import strato

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sklearn-iris"))
sys.path.insert(0, str(HERE / "features"))
from iris_data import COLUMNS, iris_tables  # noqa: E402
from prepare_data import write_iris  # noqa: E402

console = Console(soft_wrap=True)


def main() -> int:
    client = strato.connect()
    console.print(f"[bold]Strato control plane[/] at {client.url}")
    feature_store(client)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_iris(Path(tmp) / "train").parent
        spec = strato.TrainingJob(
            name=f"iris-tree-{time.strftime('%Y%m%d-%H%M%S')}",
            code=str(HERE / "sklearn-iris"),
            command="python train.py",
            hyperparameters={"max_leaf_nodes": 8},
            inputs={"train": str(data)},
            resources={"cpus": 1, "memory": "1Gi"},
            max_runtime="10m",
            metric_definitions=[
                {"name": "validation:accuracy", "regex": r"validation accuracy: ([0-9.]+)"},
                {"name": "train:accuracy", "regex": r"train_accuracy=([0-9.]+)"},
            ],
        )
        job = client.jobs.submit(spec)
    with console.status(f"training {job.name}"):
        job.wait(timeout=600)

    color = "green" if job.status == "Completed" else "red"
    console.print(f"job [bold]{job.name}[/]: [{color}]{job.status}[/] ({job.message})")
    for name, value in job.metrics.items():
        console.print(f"  {name} = {value:.4f}")
    console.print("[bold]log tail[/]")
    log = [line for line in "".join(job.logs()).splitlines() if not line.startswith("[strato]")]
    for line in log[-8:]:
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"[bold]model[/] {job.model_uri}")
    if job.status == "Completed" and job.data["status"].get("tracking"):
        register_and_approve(client, job)
        serve_and_score(client)
    spot_job = spot_run(client)
    cost_report(client)
    console.print("The control plane keeps running; `strato get jobs` lists jobs, `strato down` stops it.")
    return 0 if job.status == spot_job.status == "Completed" else 1


def feature_store(client: strato.Client) -> None:
    """Iris into lake tables, the feature definitions applied, a point-in-time training dataset saved (its
    lineage names the source versions), a training job run on it (its input is the lake table, pinned to
    a version), and the online store materialized."""
    from strato.cli.features import load_definitions

    lake = client.features.lake()
    measurements, labels = iris_tables()
    for name, frame in (("iris_measurements", measurements), ("iris_labels", labels)):
        version = lake.overwrite(name, frame) if lake.exists(name) else lake.create(name, frame)
        console.print(f"[bold]lake[/] lake://{name}@{version}: {len(frame)} rows")
    client.features.apply(*load_definitions(HERE / "features" / "features.yaml"))
    training = client.features.get_historical_features("lake://iris_labels", "iris_model")
    version = client.features.save_dataset("iris_training", training)
    frame = training.to_pandas()
    early = frame[frame.event_timestamp < measurements.event_timestamp.max()]  # before the careful one
    console.print(
        f"[bold]training dataset[/] lake://iris_training@{version}: {len(frame)} rows; "
        f"{len(early)} labels recorded before the careful measurement see the rough one"
    )
    job = client.jobs.submit(
        strato.TrainingJob(
            name=f"iris-features-{time.strftime('%Y%m%d-%H%M%S')}",
            code=str(HERE / "features"),
            command="python train.py",
            inputs={"train": "lake://iris_training"},  # pinned to the version just written
            metric_definitions=[{"name": "cv:accuracy", "regex": r"cross-validated accuracy: ([0-9.]+)"}],
        )
    )
    with console.status(f"training {job.name} on lake://iris_training"):
        job.wait(timeout=600)
    accuracy = job.metrics.get("cv:accuracy", float("nan"))
    console.print(f"  job {job.name} on {job.data['spec']['inputs']['train']}: {job.status}, accuracy {accuracy:.3f}")
    done = client.features.materialize()  # every value up to now (newer wins, so re-runs are safe)
    for view in done:
        console.print(f"[bold]materialized[/] {view['view']}: {view['rows']} flowers into the online store")


def register_and_approve(client: strato.Client, job: strato.Job) -> None:
    """The job's MLflow run holds its model (packaged from model.joblib): register it, check it against an
    approval policy (a metric gate, one approver) and approve it, which moves the ``champion`` alias."""
    run_id = job.data["status"]["tracking"]["run_id"]
    console.print(f"[bold]MLflow run[/] {run_id} at {client.url}/mlflow/#/experiments/0/runs/{run_id}")
    client.apply(
        {
            "kind": "ApprovalPolicy",
            "name": "iris-quickstart",
            "gates": ["validation:accuracy >= 0.8"],
            "require": {"approvals": 1},
            "on_approval": {"set_alias": "champion"},
        }
    )
    version = client.models.register("iris-quickstart", job=job.name, description="a decision tree on iris")
    number = version["version"]
    console.print(f"registered iris-quickstart version {number}: {version['status']}")
    decision = client.models.approve("iris-quickstart", number, reason="quickstart: passes the accuracy gate")
    console.print(f"approved: {decision['message']}")
    console.print("load it with mlflow.pyfunc.load_model('models:/iris-quickstart@champion')")


def serve_and_score(client: strato.Client) -> None:
    """Deploy the approved model (the ``champion`` alias) as an endpoint, invoke it, then score the
    whole data set with a batch transform job."""
    champion = "models:/iris-quickstart@champion"
    client.endpoints.apply(strato.Endpoint(name="iris-quickstart", variants=[{"model": champion}]))
    with console.status("deploying endpoint iris-quickstart"):
        endpoint = client.endpoints.wait("iris-quickstart", timeout=300)
    console.print(f"[bold]endpoint[/] {endpoint['status']['url']}")
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    online = client.features.get_online_features({"flower_id": [0, 75, 149]}, ["flower_measurements:*"])
    rows = [list(values) for values in zip(*(online[c] for c in COLUMNS), strict=True)]
    answer = client.endpoints.invoke(
        "iris-quickstart", {"dataframe_split": {"columns": list(frame.columns), "data": rows}}
    )
    console.print(f"  flowers 0, 75, 149 (features from the online store) -> classes {answer['predictions']}")

    data = Path(tempfile.mkdtemp(prefix="strato-quickstart-")) / "iris.parquet"
    frame.to_parquet(data)
    name = f"iris-scores-{time.strftime('%Y%m%d-%H%M%S')}"
    client.batch.submit(strato.BatchTransformJob(name=name, model=champion, input=str(data),
                                                 join_input="all", batch_size=50))  # fmt: skip
    with console.status(f"batch transform {name}"):
        scored = client.batch.wait(name, timeout=300)
    console.print(
        f"[bold]batch transform[/] {name}: {scored['status']['state']}: {scored['status'].get('message', '')}"
    )


def spot_run(client: strato.Client) -> strato.Job:
    """A job on simulated spot capacity: interrupted 3 s in, restarted, resumed from its checkpoint."""
    job = client.jobs.submit(
        strato.TrainingJob(
            name=f"digits-spot-{time.strftime('%Y%m%d-%H%M%S')}",
            code=str(HERE / "spot"),
            command="python train.py",
            hyperparameters={"epochs": 12},
            spot={"cloud": "aws", "notice": "2s", "interruptions": {"at": ["3s"]}},
        )
    )
    with console.status(f"training {job.name} on spot"):
        job.wait(timeout=600)
    status = job.data["status"]
    console.print(f"spot job [bold]{job.name}[/]: {job.status} after {len(status['attempts'])} attempts")
    for attempt in status["attempts"]:
        lost = attempt.get("progress_lost")
        console.print(
            f"  attempt {attempt['attempt']}: {attempt['outcome']}"
            + (f", {lost:.1f}s of work lost" if lost is not None else "")
        )
    good = status.get("goodput") or {}
    console.print(
        f"  checkpoints: {status.get('checkpoint', {}).get('count', 0)}; "
        f"goodput {good.get('goodput', 0):.1%} of {good.get('billed_seconds', 0):.1f}s billed"
    )
    resumed = [line for line in "".join(job.logs()).splitlines() if line.startswith("resumed from epoch")]
    console.print(f"  {resumed[0] if resumed else 'did not resume'}")
    return job


def cost_report(client: strato.Client) -> None:
    """What all of it cost here (priced on the reference target), what the same run time would cost on
    each cloud and on Databricks, and the lever that saves the most."""
    report = client.cost.report(1)
    console.print(f"[bold]cost[/] of this quickstart at {report['target']}: ${report['total']:.4f}")
    clouds = report["on_each_cloud"]
    console.print("  on each cloud: " + ", ".join(
        f"{cloud} ${value:.4f}" for cloud, value in clouds.items() if value is not None
    ))  # fmt: skip
    lever = report["levers"][0]
    console.print(f"  biggest lever: {lever['lever']} (saves ~${lever['monthly_saving']:.2f}/month at this rate)")


if __name__ == "__main__":
    sys.exit(main())
