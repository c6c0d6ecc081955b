#!/usr/bin/env python
"""Experiment tracking through Strato against a bare MLflow server, and job start-up with tracking on.

Claim (docs/benchmarks.md): logging metrics from a job through Strato's address (``/mlflow`` on the
control plane, which forwards to its managed MLflow server) costs at most 10% more than logging
straight to a bare ``mlflow server`` on the same database; and a job's start-up with tracking on
(its MLflow run created, params logged, the environment pointed at it) stays within 0.5 s of tracking
off.

One run, side by side:

* **Logging.** One control plane with tracking on (SQLite, the default) and, next to it, a bare
  ``mlflow server`` started by this script on the *same* database file and artifact directory with the
  same server options (one uvicorn worker, no access log). A Strato training job runs a script that
  logs ``--points`` metric points (10,000) into a fresh run with the unmodified MLflow client, once
  with ``log_metric`` (one request per point) and once with ``log_batch`` (1,000 per request), and
  prints the time the logging took. The job runs against each address in turn (alternating, so both
  see the same machine), ``--rounds`` times; medians and the ratio are printed.
* **Start-up.** ``--jobs`` no-op jobs, one after another, on the tracking-on control plane and on a
  second control plane with tracking off (alternating): the time from submit to the user code's first
  act (it prints ``time.time()``), medians.
* **Physical limit.** The proxy adds one loopback hop per request; the floor is the bare server's time.

    .venv/bin/python benchmarks/tracking.py            # full run (~6-8 minutes on 2 cores)
    .venv/bin/python benchmarks/tracking.py --quick    # smoke run
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

import httpx

import strato
from strato.client import Client
from strato.compute.service_process import free_port
from strato.config import Settings, load_settings
from strato.server import daemon
from strato.tracking.server import PREFIX, artifacts_destination, backend_store_uri, server_environment

LOG_GOAL = 1.10  # Strato's time / the bare server's
STARTUP_GOAL_S = 0.5
MARK = "strato-bench-start"
NOOP = f"import time\nprint('{MARK}', repr(time.time()), flush=True)\n"
LOGGER = """\
import argparse, time
from mlflow import MlflowClient
from mlflow.entities import Metric
parser = argparse.ArgumentParser()
parser.add_argument("--uri")
parser.add_argument("--mode")
parser.add_argument("--points", type=int)
args = parser.parse_args()
client = MlflowClient(args.uri)
experiment = client.get_experiment_by_name("bench") or client.get_experiment(client.create_experiment("bench"))
run_id = client.create_run(experiment.experiment_id).info.run_id
started = time.perf_counter()
if args.mode == "log_metric":
    for i in range(args.points):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
else:
    now = int(time.time() * 1000)
    for first in range(0, args.points, 1000):
        batch = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(first, min(first + 1000, args.points))]
        client.log_batch(run_id, metrics=batch)
elapsed = time.perf_counter() - started
assert len(client.get_metric_history(run_id, "loss")) == args.points
print(f"logged {args.points} points in {elapsed:.4f}s", flush=True)
"""


def wait_http(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:g}s")


def bare_server(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """A bare MLflow server on the same database and artifacts, with the managed server's options."""
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri(settings.resolved_database_url),
        "--artifacts-destination", artifacts_destination(settings.resolved_artifact_url),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--static-prefix", PREFIX, "--uvicorn-opts", "--no-access-log",
    ]  # fmt: skip
    log = open(settings.home / "bare-mlflow.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        command, env=server_environment({}), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}{PREFIX}"
    wait_http(url + "/health")
    return process, url


def logging_job(client: Client, name: str, code: Path, uri: str, mode: str, points: int) -> float:
    spec = strato.TrainingJob(
        name=name,
        code=str(code),
        command="python logger.py",
        hyperparameters={"uri": uri, "mode": mode, "points": points},
        resources={"cpus": 1, "memory": "1Gi"},
    )
    client.jobs.submit(spec)
    job = client.jobs.wait(name, timeout=900)
    text = "".join(client.jobs.logs(name))
    if job.status != "Completed":
        raise SystemExit(f"logging job {name} ended {job.status}: {job.message}\n{text[-2000:]}")
    line = next(line for line in text.splitlines() if line.startswith("logged "))
    return float(line.split(" in ")[1].rstrip("s"))


def startup(client: Client, name: str, code: Path) -> float:
    submitted = time.time()
    client.jobs.submit(strato.TrainingJob(name=name, code=str(code), command="python noop.py"))
    job = client.jobs.wait(name, timeout=120)
    if job.status != "Completed":
        raise SystemExit(f"job {name} ended {job.status}: {job.message}")
    text = "".join(client.jobs.logs(name))
    started = next(float(line.split()[1]) for line in text.splitlines() if line.startswith(MARK))
    return started - submitted


def plane(home: Path, tracking: bool) -> tuple[Settings, Client]:
    settings = load_settings(home=home, environ={}, port=0, tick_interval=0.2, tracking=tracking)
    info = daemon.start(settings)
    return settings, Client(info.url, settings.token_path.read_text().strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=15, help="no-op jobs per control plane for start-up")
    parser.add_argument("--quick", action="store_true", help="1,000 points, 1 round, 5 jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.rounds, args.jobs = 1000, 1, 5
    root = Path(tempfile.mkdtemp(prefix="strato-bench-tracking-"))
    code = root / "code"
    code.mkdir()
    (code / "logger.py").write_text(LOGGER)
    (code / "noop.py").write_text(NOOP)
    on_settings, on = plane(root / "on", tracking=True)
    off_settings, off = plane(root / "off", tracking=False)
    bare: subprocess.Popen[bytes] | None = None
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    times: dict[tuple[str, str], list[float]] = {}
    boot: dict[str, list[float]] = {"on": [], "off": []}
    try:
        wait_http(on.url + "/mlflow/health")
        bare, bare_url = bare_server(on_settings)
        targets = {"strato": on.url + PREFIX, "bare": bare_url}
        n = 0
        for mode in ("log_metric", "log_batch"):
            for round_ in range(args.rounds):
                order = ("strato", "bare") if round_ % 2 == 0 else ("bare", "strato")
                for target in order:
                    n += 1
                    seconds = logging_job(on, f"log-{n}", code, targets[target], mode, args.points)
                    times.setdefault((mode, target), []).append(seconds)
                    print(f"{mode} {target}: {seconds:.3f}s", flush=True)
        for i in range(args.jobs):
            for label, client in (("on", on), ("off", off)) if i % 2 == 0 else (("off", off), ("on", on)):
                boot[label].append(startup(client, f"noop-{label}-{i}", code))
    finally:
        if bare is not None:
            os.killpg(bare.pid, 15)
            bare.wait(timeout=30)
        for settings, client in ((on_settings, on), (off_settings, off)):
            client.close()
            daemon.stop(settings)
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"Run {started}; {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}; "
          f"{args.points} points, {args.rounds} rounds, medians")
    print("| what | bare mlflow server | through Strato | ratio | goal |")
    print("|---|---|---|---|---|")
    passed = True
    for mode in ("log_metric", "log_batch"):
        bare_s = statistics.median(times[(mode, "bare")])
        strato_s = statistics.median(times[(mode, "strato")])
        ok = strato_s / bare_s <= LOG_GOAL
        passed &= ok
        print(f"| {args.points} points, {mode} | {bare_s:.3f} s | {strato_s:.3f} s | {strato_s / bare_s:.3f} | "
              f"<= {LOG_GOAL:.2f}: {'PASS' if ok else 'FAIL'} |")
    on_s, off_s = statistics.median(boot["on"]), statistics.median(boot["off"])
    ok = on_s - off_s <= STARTUP_GOAL_S
    passed &= ok
    print(f"| job start-up (submit -> user code), tracking off / on | {off_s:.3f} s | {on_s:.3f} s | "
          f"+{on_s - off_s:.3f} s | <= +{STARTUP_GOAL_S} s: {'PASS' if ok else 'FAIL'} |")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
