"""The quickstart story so far: load a bundled data set into lake tables, define features, build a
point-in-time training dataset (a job trains on it) and materialize the online store; then a pipeline
(examples/pipelines/iris.yaml) takes a model to production: prepare the data, train on spot, gate on the
validation metric, register and approve it against an approval policy, score a file with a batch
transform and deploy an endpoint, which answers with features read from the online store; then a spot
job is interrupted once and resumes from its checkpoint; and the cost report prices all of it on each
cloud.

    make quickstart        # or: .venv/bin/python examples/quickstart.py

It starts the embedded control plane in the workspace home (``~/.strato``, or ``$STRATO_HOME``) if none
runs. Every data set comes from scikit-learn (no download).
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
sys.path.insert(0, str(HERE / "features"))
from iris_data import COLUMNS, iris_tables  # noqa: E402

console = Console(soft_wrap=True)


def main() -> int:
    client = strato.connect()
    console.print(f"[bold]Strato control plane[/] at {client.url}")
    feature_store(client)
    run = pipeline(client)
    spot_job = spot_run(client)
    cost_report(client)
    console.print("The control plane keeps running; `strato get jobs` lists jobs, `strato down` stops it.")
    return 0 if run["status"]["state"] == "Succeeded" and spot_job.status == "Completed" else 1


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


def pipeline(client: strato.Client) -> dict:
    """The model's way to production as a pipeline (examples/pipelines/iris.yaml): prepare the data, train
    on spot, gate on the validation metric, register and approve against an approval policy (which moves
    the ``champion`` alias), batch-score a file, deploy the endpoint; then invoke it with features read
    from the online store."""
    from strato.specs import load_yaml_file

    client.apply(
        {
            "kind": "ApprovalPolicy",
            "name": "iris-quickstart",
            "gates": ["validation:accuracy >= 0.8"],
            "require": {"approvals": 1},
            "on_approval": {"set_alias": "champion"},
        }
    )
    client.apply(load_yaml_file(HERE / "pipelines" / "iris.yaml")[0], base_dir=HERE / "pipelines")
    score = Path(tempfile.mkdtemp(prefix="strato-quickstart-")) / "iris.parquet"
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    frame.to_parquet(score)
    name = f"iris-quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
    client.pipelines.run("iris-quickstart", {"score_input": str(score)}, name=name)
    with console.status(f"pipeline run {name}"):
        run = client.pipelines.wait(name, timeout=900)
    steps = run["status"]["steps"]
    color = "green" if run["status"]["state"] == "Succeeded" else "red"
    state, message = run["status"]["state"], run["status"].get("message", "")
    console.print(f"[bold]pipeline run[/] {name}: [{color}]{state}[/] {message}")
    for step, info in steps.items():
        console.print(f"  {step}: {info['state']}" + (f" ({info['message']})" if info.get("message") else ""))
    if "job" in steps["train"]:
        job = client.jobs.get(steps["train"]["job"])
        console.print(f"job [bold]{job.name}[/]: {job.status} ({job.message})")
        for metric, value in job.metrics.items():
            console.print(f"  {metric} = {value:.4f}")
        log = [line for line in "".join(job.logs()).splitlines() if not line.startswith("[strato]")]
        for line in log[-4:]:
            console.print(f"  {line}", markup=False, highlight=False)
        console.print(f"[bold]model[/] {job.model_uri}")
    if run["status"]["state"] != "Succeeded":
        return run
    console.print(f"registered {steps['register']['outputs']['model_uri']} and approved (alias champion)")
    batch = client.batch.get(steps["score"]["resource"]["name"])
    scored = f"{batch['status']['state']}: {batch['status'].get('message', '')}"
    console.print(f"[bold]batch transform[/] {batch['name']}: {scored}")
    console.print(f"[bold]endpoint[/] {steps['serve']['outputs']['url']}")
    online = client.features.get_online_features({"flower_id": [0, 75, 149]}, ["flower_measurements:*"])
    rows = [list(values) for values in zip(*(online[c] for c in COLUMNS), strict=True)]
    request = {"dataframe_split": {"columns": list(frame.columns), "data": rows}}
    answer = client.endpoints.invoke("iris-quickstart", request)
    console.print(f"  flowers 0, 75, 149 (features from the online store) -> classes {answer['predictions']}")
    return run


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
