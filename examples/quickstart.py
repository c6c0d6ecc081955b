"""The quickstart story, part one: train a real scikit-learn model as a managed training job.

    make quickstart        # or: .venv/bin/python examples/quickstart.py

It starts the embedded control plane in the workspace home (``~/.strato``, or ``$STRATO_HOME``) if
none runs, writes scikit-learn's bundled iris data set as a training channel (no download), submits
``sklearn-iris/train.py`` (a SageMaker script-mode script, unchanged) and prints the job's status,
metrics, log tail and model location.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

import strato

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sklearn-iris"))
from prepare_data import write_iris  # noqa: E402

console = Console(soft_wrap=True)


def main() -> int:
    client = strato.connect()
    console.print(f"[bold]Strato control plane[/] at {client.url}")
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
    log = "".join(job.logs()).splitlines()
    for line in log[-8:]:
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"[bold]model[/] {job.model_uri}")
    console.print("The control plane keeps running; `strato get jobs` lists jobs, `strato down` stops it.")
    return 0 if job.status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
