#!/usr/bin/env python
"""Hyperband against random search: the compute each needs to reach the same objective.

Claim (docs/benchmarks.md): on a real scikit-learn problem with 2 parallel trials, a ``hyperband``
tuning job reaches the target objective with at most half the compute of a ``random`` one.

One run, one control plane, side by side:

* **Problem.** A two-layer MLP (``MLPClassifier``) on scikit-learn's bundled digits, with the training
  images augmented by one-pixel shifts (``examples/tuning/train.py --augment 1``), trained epoch by
  epoch with ``partial_fit`` for up to ``--epochs`` epochs; each epoch reports the validation accuracy
  (``strato.runtime.report``). The search space is wide, as a first search is (learning rate 1e-6..1
  and L2 1e-6..1, both log; width 64/128/256; batch 32/128), so most configurations are poor.
* **Peer.** ``strategy: random`` (Optuna's RandomSampler). **Strato's claim.** ``strategy: hyperband``
  (the same RandomSampler, so trial N proposes the same hyperparameters in both, plus successive
  halving on the reports: one bracket (ASHA, the default), first cut after ``--min-resource`` 1
  epoch, reduction factor 3, so rungs at 1, 3, 9 and 27 epochs).
  Both: the same seed, 2 parallel trials, one core each (``OMP_NUM_THREADS=1``, ``cpus: 1``), and a
  warm pool (``warm_pool:``: a trial's script starts in a process forked from one that already imported
  scikit-learn; ``--cold`` turns it off).
* **Measure.** Each tuning job runs until any trial reports a validation accuracy of at least
  ``--target`` (then the benchmark stops it) or ``--max-trials`` trials ended. The moment of reaching it
  is the first metric point at or above the target (the control plane's timestamp). Up to that
  moment: *epochs* = epochs all trials trained; *trial-seconds* = the wall time trial jobs held their
  core (job start, incl. the interpreter start, to the end of the user code: the Uploading phase of a
  trial that ran to its end, the job's end for a pruned one); *wall* = time from submit.
* **Target.** 0.985 by default: the 2-layer MLPs that train well end near 0.98-0.99 on this split,
  so only a minority of random configurations reach it (calibrated on seeds 0-1, see the doc).
* **Physical limit.** Neither can beat one trial that reaches the target trained alone: the
  "ideal" row, the compute of the first trial (in trial order) that reaches it, up to that moment.

    .venv/bin/python benchmarks/tuning.py                  # full run (~6-10 minutes on 2 cores)
    .venv/bin/python benchmarks/tuning.py --quick          # smoke run: 1 seed, small budget
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import strato
from strato.client import Client
from strato.config import load_settings
from strato.server import daemon

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tuning"
METRIC = "validation:accuracy"
GOAL = 0.5  # hyperband's compute / random's compute
TERMINAL = {"Completed", "Failed", "Stopped"}
SPACE: dict[str, Any] = {
    "learning_rate_init": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
    "alpha": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
    "hidden": {"type": "categorical", "values": [64, 128, 256]},
    "batch_size": {"type": "categorical", "values": [32, 128]},
}


@dataclass
class Run:
    strategy: str
    seed: int
    reached: bool
    wall: float  # seconds from submit to the target (or to the end)
    epochs: int
    trial_seconds: float
    trials: int  # trials started before the target was reached
    pruned: int
    ideal_epochs: int | None  # the first trial that reached the target, alone
    ideal_seconds: float | None


def spec(strategy: str, seed: int, args: argparse.Namespace) -> strato.TuningJob:
    early = {"min_resource": args.min_resource, "reduction_factor": 3, "brackets": args.brackets}
    return strato.TuningJob(
        name=f"{strategy}-seed{seed}-{int(time.time())}",
        template={
            "code": str(EXAMPLE),
            "command": "python train.py",
            "hyperparameters": {"epochs": args.epochs, "layers": 2, "augment": 1},
            "environment": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            "resources": {"cpus": 1, "memory": "1Gi"},
            "warm_pool": None if args.cold else {"keep_alive": 60},
        },
        search_space=SPACE,
        objective={"metric": METRIC, "direction": "maximize"},
        strategy=strategy,
        max_trials=args.max_trials,
        max_parallel=2,
        max_failed=args.max_trials,
        seed=seed,
        early_stopping=early if strategy == "hyperband" else None,
    )


def run_one(client: Client, strategy: str, seed: int, args: argparse.Namespace) -> Run:
    tuning_spec = spec(strategy, seed, args)
    name = tuning_spec.name
    submitted = time.time()
    tuning = client.tuning.submit(tuning_spec)
    deadline = submitted + args.deadline
    while True:
        time.sleep(0.25)
        trials = client.tuning.trials(name)
        if any((t.get("value") or 0) >= args.target for t in trials):
            client.tuning.stop(name)
            break
        if tuning.refresh().done or time.time() > deadline:
            client.tuning.stop(name)
            break
    tuning = client.tuning.wait(name, timeout=120)
    return measure(client, tuning.trials(), strategy, seed, submitted, args.target)


def _user_code_end(client: Client, job: str, ended_at: float | None) -> float | None:
    """When the trial's own work ended: the Uploading phase of a trial that ran to its end (what follows,
    uploading outputs and packaging the model into its MLflow run, is the same for every completed trial
    of either strategy and is not search compute), or the job's end for a stopped (pruned) one."""
    uploading = [float(e["at"]) for e in client.jobs.events(job) if e["state"] == "Uploading"]
    return min(uploading) if uploading else ended_at


def measure(client: Client, trials: list[dict[str, Any]], strategy: str, seed: int, submitted: float,
            target: float) -> Run:
    points: dict[str, list[dict[str, Any]]] = {}
    spans: dict[str, tuple[float, float | None]] = {}
    for trial in trials:
        job = client.jobs.get(trial["job"]).data["status"]
        points[trial["job"]] = [p for p in client.jobs.metric_history(trial["job"], METRIC) if p["step"] is not None]
        if job.get("started_at"):
            spans[trial["job"]] = (float(job["started_at"]), _user_code_end(client, trial["job"], job.get("ended_at")))
    hits = [(p["at"], job) for job, series in points.items() for p in series if p["value"] >= target]
    end = max([float(e) for _, e in spans.values() if e] + [submitted])
    horizon = min(at for at, _ in hits) if hits else end
    epochs = sum(1 for series in points.values() for p in series if p["at"] <= horizon)
    seconds = sum(max(0.0, min(e or horizon, horizon) - s) for s, e in spans.values() if s <= horizon)
    started = sum(1 for s, _ in spans.values() if s <= horizon)
    pruned = sum(
        1 for t in trials if t["state"] == "Pruned" and t["job"] in spans and (spans[t["job"]][1] or 0) <= horizon
    )
    ideal_epochs = ideal_seconds = None
    if hits:
        first = next(t["job"] for t in trials if any(p["value"] >= target for p in points[t["job"]]))
        reach = min(p["at"] for p in points[first] if p["value"] >= target)
        ideal_epochs = sum(1 for p in points[first] if p["at"] <= reach)
        ideal_seconds = reach - spans[first][0]
    return Run(strategy, seed, bool(hits), horizon - submitted, epochs, seconds, started, pruned,
               ideal_epochs, ideal_seconds)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def table(runs: list[Run], target: float) -> tuple[list[str], bool]:
    """Markdown rows: one per seed (both strategies and their ratios), then the summary. Seeds differ
    in difficulty by two orders of magnitude (the target may be hit by trial 0 or trial 30), so the
    summary compares within seeds: the median of the per-seed ratios, and the ratio of the totals
    over all seeds (expected compute), not the ratio of two medians taken from different seeds."""
    rows = [
        f"| seed | reached {target:g} (random / hyperband) | trials started | pruned (hyperband) | "
        "epochs random | epochs hyperband | ratio | trial-s random | trial-s hyperband | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    pairs = []
    for seed in sorted({r.seed for r in runs}):
        rand = next(r for r in runs if r.seed == seed and r.strategy == "random")
        hyper = next(r for r in runs if r.seed == seed and r.strategy == "hyperband")
        pairs.append((rand, hyper))
        rows.append(
            f"| {seed} | {'yes' if rand.reached else 'NO'} / {'yes' if hyper.reached else 'NO'} | "
            f"{rand.trials} / {hyper.trials} | {hyper.pruned} | {rand.epochs} | {hyper.epochs} | "
            f"{_ratio(hyper.epochs, rand.epochs):.2f} | {rand.trial_seconds:.1f} | {hyper.trial_seconds:.1f} | "
            f"{_ratio(hyper.trial_seconds, rand.trial_seconds):.2f} |"
        )
    epochs = _median([_ratio(h.epochs, r.epochs) for r, h in pairs])
    seconds = _median([_ratio(h.trial_seconds, r.trial_seconds) for r, h in pairs])
    total_epochs = _ratio(sum(h.epochs for _, h in pairs), sum(r.epochs for r, _ in pairs))
    total_seconds = _ratio(sum(h.trial_seconds for _, h in pairs), sum(r.trial_seconds for r, _ in pairs))
    rows.append(f"| **median of the per-seed ratios** | | | | | | **{epochs:.2f}** | | | **{seconds:.2f}** |")
    rows.append(
        f"| **all seeds together** | | | | {sum(r.epochs for r, _ in pairs)} | {sum(h.epochs for _, h in pairs)} | "
        f"**{total_epochs:.2f}** | {sum(r.trial_seconds for r, _ in pairs):.1f} | "
        f"{sum(h.trial_seconds for _, h in pairs):.1f} | **{total_seconds:.2f}** |"
    )
    ideal = [r for r, _ in pairs if r.ideal_epochs is not None]
    if ideal:
        ideal_epochs = _median([float(r.ideal_epochs or 0) for r in ideal])
        ideal_seconds = _median([r.ideal_seconds or 0.0 for r in ideal])
        rows.append(
            f"| ideal (the first good trial alone, median) | | 1 | | {ideal_epochs:.0f} | | | {ideal_seconds:.1f} | | |"
        )
    reached = all(r.reached for r in runs)
    # The compute a search needs is a random variable over seeds; its expectation is the ratio of the totals.
    # The median of per-seed ratios is shown too: it is dominated by the seeds where random search hits the
    # target within its first trials, before early stopping has anything to cut.
    passed = reached and total_seconds <= GOAL and total_epochs <= GOAL
    rows.append("")
    rows.append(
        f"Goal: hyperband needs at most {GOAL:g}x random search's expected compute (all seeds together, in epochs "
        f"and in trial-seconds) and both reach the target in every seed: **{'PASS' if passed else 'FAIL'}**."
    )
    return rows, passed


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6", help="comma-separated seeds (default 0 to 6)")
    parser.add_argument("--target", type=float, default=0.985, help="validation accuracy to reach")
    parser.add_argument("--epochs", type=int, default=27, help="epochs of a full trial (hyperband max_resource)")
    parser.add_argument("--max-trials", type=int, default=60)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per tuning job at most")
    parser.add_argument("--min-resource", type=int, default=1, help="epochs before hyperband's first cut")
    parser.add_argument("--brackets", default="1", choices=["1", "auto"], help="1: ASHA (default); auto: Hyperband")
    parser.add_argument("--cold", action="store_true", help="no warm pool: every trial starts a new interpreter")
    parser.add_argument("--quick", action="store_true", help="one seed, 9 epochs, target 0.95")
    args = parser.parse_args(argv)
    args.brackets = 1 if args.brackets == "1" else "auto"
    if args.quick:
        args.seeds, args.epochs, args.target, args.max_trials = "0", 9, 0.95, 12
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    home = Path(tempfile.mkdtemp(prefix="strato-bench-tuning-"))
    settings = load_settings(home=home / "home", environ={}, port=0, tick_interval=0.2)
    info = daemon.start(settings)
    client = Client(info.url, settings.token_path.read_text().strip())
    client.wait_ready()
    # A background run ignores SIGINT: let SIGTERM end it through the cleanup below too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs: list[Run] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for i, seed in enumerate(seeds):
            # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
            for strategy in ("random", "hyperband") if i % 2 == 0 else ("hyperband", "random"):
                run = run_one(client, strategy, seed, args)
                runs.append(run)
                print(f"seed {seed} {strategy}: reached={run.reached} epochs={run.epochs} "
                      f"trial-seconds={run.trial_seconds:.1f} wall={run.wall:.1f}s trials={run.trials} "
                      f"pruned={run.pruned}", flush=True)
    finally:
        for tuning in client.tuning.list():  # trials would outlive the control plane otherwise
            if not tuning.done:
                client.tuning.stop(tuning.name)
                with contextlib.suppress(Exception):
                    client.tuning.wait(tuning.name, timeout=60)
        client.close()
        daemon.stop(settings)
        shutil.rmtree(home, ignore_errors=True)
    rows, passed = table(runs, args.target)
    print()
    print(f"Run {started}; {machine()}; target {METRIC} >= {args.target:g}, epochs {args.epochs}, "
          f"max_trials {args.max_trials}, seeds {args.seeds}, 2 parallel trials")
    print("\n".join(rows))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
