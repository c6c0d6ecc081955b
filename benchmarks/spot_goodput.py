"""Spot goodput: how much of a spot bill is useful work under interruptions, for three checkpoint
policies against the theoretical optimum.

    .venv/bin/python benchmarks/spot_goodput.py [--runs 400] [--work-hours 4] [--state-mib 256]

The checkpoint cost is measured for real: a model state of ``--state-mib`` MiB is saved with
``strato.runtime.checkpoint()`` and uploaded by the job runner's ``CheckpointSync`` into a local
artifact store, the same code path a job uses. Interruptions come from the same seeded Poisson process
the reconciler uses (``strato.jobs.spot.next_interruption``), in simulated time (accelerated: hours of
spot time in seconds), for 1, 5 and 20 interruptions per hour. Each policy runs the same job of
``--work-hours`` of computation on the same interruption draws:

  (a) no checkpoints - every interruption restarts the job from the beginning;
  (b) a fixed interval - every 30 minutes (a typical "checkpoint every epoch or so" choice);
  (c) Strato's advice - Young/Daly from the measured cost and the rate (``runtime.advised_interval``);
  optimum - the interval that maximizes expected goodput in Daly's model (numerical search).

Goodput = useful seconds / billed seconds. The physical limit is 1.0 (no interruptions, no checkpoints).
Goal: (c) within 5% of the optimum and never worse than (a) or (b).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from strato import runtime
from strato.jobs import spot
from strato.jobs.checkpoints import CheckpointSync
from strato.specs import InterruptionModel
from strato.store.artifacts import open_artifact_store

RATES = (1.0, 5.0, 20.0)
FIXED_INTERVAL = 1800.0
RESTART_COST = 60.0  # seconds to get a new instance and restore the checkpoint
CAP = 1000 * 3600.0  # a policy that has not finished after this much billed time counts as this


def measure_checkpoint_cost(state_mib: int) -> float:
    """Seconds to save a model state of ``state_mib`` MiB and upload it as a checkpoint version."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ckpt").mkdir()
        (root / "control").mkdir()
        os.environ["STRATO_CHECKPOINT_DIR"] = str(root / "ckpt")
        os.environ["STRATO_CONTROL_DIR"] = str(root / "control")
        store = open_artifact_store(str(root / "store"))
        sync = CheckpointSync(store, "jobs/bench/1", root / "ckpt", root / "control")
        state = np.random.default_rng(0).random(state_mib * 2**20 // 8)
        costs = []
        for _ in range(3):
            started = time.perf_counter()
            with runtime.checkpoint() as directory:
                np.save(directory / "state.npy", state)
            with contextlib.redirect_stdout(io.StringIO()):  # the runner's marker lines are for a log
                sync.sync()
            costs.append(time.perf_counter() - started)
        return statistics.median(costs)


def simulate(work: float, interval: float | None, cost: float, rate: float, seed: int) -> float:
    """Billed seconds to finish ``work`` seconds of computation (capped at ``CAP``)."""
    model = InterruptionModel(rate_per_hour=rate, seed=seed)
    billed, durable, attempt = 0.0, 0.0, 1
    next_cut = spot.next_interruption(model, job_started_at=0, attempt_started_at=0, attempt=1, interruptions=0)
    assert next_cut is not None
    clock = 0.0
    while durable < work and billed < CAP:
        segment = work - durable if interval is None else min(interval, work - durable)
        needed = segment + (cost if durable + segment < work else 0.0)  # no checkpoint after the last piece
        if clock + needed <= next_cut:
            clock += needed
            billed += needed
            durable += segment
            continue
        billed += next_cut - clock + RESTART_COST  # the unfinished piece is lost, then a restart
        clock = next_cut + RESTART_COST
        attempt += 1
        drawn = spot.next_interruption(
            model, job_started_at=0, attempt_started_at=clock, attempt=attempt, interruptions=attempt - 1
        )
        assert drawn is not None
        next_cut = drawn
    return min(billed, CAP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="simulated jobs per rate and policy")
    parser.add_argument("--work-hours", type=float, default=4.0, help="computation the job needs")
    parser.add_argument("--state-mib", type=int, default=256, help="model state written per checkpoint")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 runs, 32 MiB")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.state_mib = 40, 32
    console = Console(width=150)
    work = args.work_hours * 3600
    with console.status(f"measuring a real {args.state_mib} MiB checkpoint"):
        cost = measure_checkpoint_cost(args.state_mib)
    table = Table(
        title=f"Spot goodput: {args.work_hours:g} h of work, checkpoint cost {cost:.2f}s "
        f"(measured, {args.state_mib} MiB), restart {RESTART_COST:.0f}s, median of {args.runs} "
        f"runs; physical limit 1.0"
    )
    for column in (
        "interruptions/h",
        "(a) none",
        "(b) every 30 min",
        "(c) Strato advice",
        "optimum",
        "advised / optimal interval",
        "(c) / optimum",
        "goal",
    ):
        table.add_column(column, justify="right")
    failures = 0
    for rate in RATES:
        mtbi = 3600 / rate
        advised = runtime.advised_interval(cost, mtbi)
        optimal = spot.optimal_interval(cost, mtbi, work, RESTART_COST)
        policies = {"none": None, "fixed": FIXED_INTERVAL, "advice": advised, "optimum": optimal}
        result = {}
        for name, interval in policies.items():
            billed = [simulate(work, interval, cost, rate, seed) for seed in range(args.runs)]
            result[name] = work / statistics.median(billed)
        ratio = result["advice"] / result["optimum"]
        ok = ratio >= 0.95 and result["advice"] >= result["none"] and result["advice"] >= result["fixed"] * 0.999
        failures += not ok
        table.add_row(
            f"{rate:g}",
            f"{result['none']:.3f}",
            f"{result['fixed']:.3f}",
            f"{result['advice']:.3f}",
            f"{result['optimum']:.3f}",
            f"{advised:.0f}s / {optimal:.0f}s",
            f"{ratio:.3f}",
            "pass" if ok else "FAIL",
        )
    console.print(table)
    expected = ", ".join(
        f"{rate:g}/h {spot.expected_goodput(work, runtime.advised_interval(cost, mtbi), cost, mtbi, RESTART_COST):.3f}"
        for rate, mtbi in ((r, 3600 / r) for r in RATES)
    )
    console.print(
        f"Goodput = work / median billed time. (a) restarts from zero at every interruption (capped at "
        f"{CAP / 3600:.0f} h billed). Expected goodput at the advised interval in Daly's model: {expected}."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
