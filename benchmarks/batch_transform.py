#!/usr/bin/env python
"""Batch transform: a Strato ``BatchTransformJob`` against scoring the same file in one process.

Claim (docs/benchmarks.md, issue 5): a batch transform scores at least 85% of the rows per second of
calling ``predict`` on the same data in one process, while adding what that one call lacks (bounded
memory, parallel workers, progress, bad rows reported, resumption without scoring a row twice).

One run, one machine, side by side:

* **Data.** ``--rows`` rows of four iris-like float columns and an id, one Parquet file; the iris
  logistic regression saved as an MLflow model (cloudpickle).
* **Peer (the limit).** One fresh process: ``pd.read_parquet`` the whole file, ``model.predict`` on it
  in one call, write the predictions beside the input columns with ``to_parquet``. Timed from after the
  model is loaded to the file written (the same work the job does per part: read, predict, write).
  The input has row groups of ``--batch-size`` rows, as large Parquet files do.
* **Strato.** A ``BatchTransformJob`` (``join_input: all``) with 1 and 2 workers, on a control plane;
  rows per second as the workers measure it (first part read to last part written, per worker, summed
  over workers), and end to end from submit to Completed (which adds starting the worker processes and
  loading the model in each).

    .venv/bin/python benchmarks/batch_transform.py              # 2M rows (~1-2 minutes on 2 cores)
    .venv/bin/python benchmarks/batch_transform.py --quick      # 200k rows
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 0.85
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def make_data(work: Path, rows: int, row_group: int) -> tuple[Path, Path]:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    model = LogisticRegression(max_iter=500).fit(x, y)
    model_dir = work / "model"
    signature = infer_signature(x, model.predict(x))
    mlflow.sklearn.save_model(model, str(model_dir), signature=signature, serialization_format="cloudpickle")
    frame = pd.DataFrame(np.random.default_rng(0).uniform(0.1, 8.0, size=(rows, 4)), columns=COLUMNS)
    frame["id"] = np.arange(rows)
    data = work / "input.parquet"
    frame.to_parquet(data, row_group_size=row_group)  # row groups let each worker read only its parts
    return model_dir, data


def one_process(model_dir: Path, data: Path, out: Path) -> float:
    """Seconds a fresh process takes to read, predict in one call and write, once its model is loaded
    (fresh, as each worker is: a long-lived process that did this before runs faster on a warm heap)."""
    result = subprocess.run([sys.executable, "-W", "ignore", __file__, "--peer", str(model_dir), str(data), str(out)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return float(result.stdout.strip().splitlines()[-1])


def peer(model_dir: str, data: str, out: str) -> None:
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(model_dir)
    started = time.perf_counter()
    frame = pd.read_parquet(data)
    frame["prediction"] = model.predict(frame[COLUMNS])
    frame.to_parquet(out)
    print(time.perf_counter() - started)


def strato_job(client: Any, name: str, model_dir: Path, data: Path, out: Path, workers: int, batch: int) -> dict:
    from strato.specs.batch_transform import BatchTransformJob

    started = time.perf_counter()
    client.batch.submit(BatchTransformJob(
        name=name, model=str(model_dir), input=str(data), output=str(out), workers=workers, batch_size=batch,
        join_input="all", resources={"cpus": 1, "memory": "2Gi"},
    ))  # fmt: skip
    job = client.batch.wait(name, timeout=1200, poll=0.1)
    wall = time.perf_counter() - started
    status = job["status"]
    if status["state"] != "Completed":
        raise RuntimeError(f"{name}: {status['state']}: {status.get('message')}")
    summaries = [_summary(out, w["index"]) for w in status["workers"]]
    return {"wall": wall, "rows_per_second": sum(s["rows_per_second"] for s in summaries)}


def _summary(out: Path, index: int) -> dict[str, Any]:
    import json

    return dict(json.loads((out / "_progress" / f"worker-{index}.json").read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000, help="rows per part")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        peer(*args.peer)
        return 0
    if args.quick:
        args.rows, args.rounds, args.batch_size = 200_000, 1, 20_000

    from strato.client import Client
    from strato.config import load_settings
    from strato.server import daemon

    work = Path(tempfile.mkdtemp(prefix="strato-bench-batch-"))
    model_dir, data = make_data(work, args.rows, args.batch_size)
    settings = load_settings(home=work / "home", environ={}, port=0, tracking=False)
    info = daemon.start(settings)
    client = Client(info.url, settings.token_path.read_text().strip())
    peer_rates, runs = [], {1: [], 2: []}  # type: ignore[var-annotated]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for r in range(args.rounds):
            peer_rates.append(args.rows / one_process(model_dir, data, work / f"peer-{r}.parquet"))
            for workers in (1, 2):
                result = strato_job(client, f"bench-{workers}w-{r}", model_dir, data, work / f"out-{workers}-{r}",
                                    workers, args.batch_size)  # fmt: skip
                runs[workers].append(result)
            print(f"round {r}: one process {peer_rates[-1]:,.0f} rows/s; strato 1 worker "
                  f"{runs[1][-1]['rows_per_second']:,.0f} rows/s ({runs[1][-1]['wall']:.1f}s end to end), "
                  f"2 workers {runs[2][-1]['rows_per_second']:,.0f} rows/s ({runs[2][-1]['wall']:.1f}s)", flush=True)
    finally:
        client.close()
        daemon.stop(settings)
        shutil.rmtree(work, ignore_errors=True)

    limit = statistics.median(peer_rates)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")  # fmt: skip
    print(f"\nRun {started}; {os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, load "
          f"{os.getloadavg()[0]:.1f}; {args.rows:,} rows, parts of {args.batch_size:,}, medians of {args.rounds}\n")
    print("| scorer | rows/s (scoring) | ratio to one process | end to end (s) |")
    print("|---|---|---|---|")
    print(f"| one process: read, predict, write | {limit:,.0f} | 1.00 | |")
    verdict = True
    for workers in (1, 2):
        rate = statistics.median(r["rows_per_second"] for r in runs[workers])
        wall = statistics.median(r["wall"] for r in runs[workers])
        label = f"strato, {workers} worker{'s' if workers > 1 else ''}"
        print(f"| {label} | {rate:,.0f} | {rate / limit:.2f} | {wall:.1f} |")
        verdict &= workers != 1 or rate / limit >= GOAL
    print(f"\nGoal: one worker scores at least {GOAL:.0%} of one process's rows/s: {'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
