#!/usr/bin/env python
"""Pipeline orchestration overhead: a 20-step no-op pipeline on Strato, in Metaflow and run directly.

Claim (issue 8): a 20-step no-op pipeline costs under 150 ms of orchestration per step beyond the step's
own process start, runs at least 5x faster than Metaflow end to end, and a fully cached 20-step re-run
takes under 1 s.

One run, one machine, side by side, each repeat interleaved (direct, Strato, Metaflow) so all three see
the same machine state:

* **chain** - 20 steps one after another; **fan-out** - 1 start -> 18 parallel -> 1 join, written as
  explicit steps (Strato has no ``foreach`` yet). Every step is ``python -c pass``.
* **Strato** - a ``processing`` step per command (no code directory) with caching off, on this script's
  own control plane (a temporary home, the local backend); timed from ``client.pipelines.run`` to the
  run being Succeeded, polled with ``client.pipelines.get`` every 20 ms.
* **Metaflow** - the same flow as a ``FlowSpec`` whose steps do nothing, ``python flow.py --no-pylint
  run`` in its own virtualenv (``benchmarks/.metaflow-venv``, made by ``_metaflow_env.py``) with its
  default local datastore and default ``--max-workers`` (16); timed from spawn to exit. Metaflow does not
  allow the ``end`` step to be a join, so its fan-out has one more step (start -> 18 -> join -> end, 21).
* **direct** (the limit) - the 20 commands with ``subprocess.run``: one after another for the chain;
  for the fan-out, the 18 with as many at once as the local backend runs (its CPUs / each step's cpus).
* **cached** - the same Strato pipelines with caching on, re-run after one run filled the cache.

Overhead per step = (Strato - direct) / 20. The second table says where Strato's time goes, per step,
from the run's step timestamps and each step job's events (all on this machine's clock).

    .venv/bin/python benchmarks/pipelines.py                      # full run (~2-3 minutes on 2 cores)
    .venv/bin/python benchmarks/pipelines.py --also-tick 0.05     # plus Strato rows with a faster tick
    .venv/bin/python benchmarks/pipelines.py --skip-metaflow --repeats 1
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _metaflow_env import METAFLOW_VERSION, clean_environ, metaflow_python
from job_overhead import machine

from strato.client import Client
from strato.config import load_settings
from strato.server import daemon
from strato.specs import load_yaml_text

STEPS = 20
WIDTH = STEPS - 2  # the fan-out's parallel steps
COMMAND = [sys.executable, "-c", "pass"]
TERMINAL = ("Succeeded", "Failed", "Stopped")
POLL_S = 0.02

OVERHEAD_GOAL_MS = 150.0
METAFLOW_GOAL = 5.0
CACHED_GOAL_S = 1.0


# The flows ----------------------------------------------------------------------------------------


def _names(shape: str) -> list[str]:
    if shape == "chain":
        return [f"s{i:02d}" for i in range(STEPS)]
    return ["start", *[f"b{i:02d}" for i in range(WIDTH)], "join"]


def strato_yaml(name: str, shape: str, cache: bool, cpus: float) -> str:
    names = _names(shape)
    lines = [f"kind: Pipeline\nname: {name}\ncache: {{enabled: {'true' if cache else 'false'}}}\nsteps:"]
    for i, step in enumerate(names):
        if shape == "chain":
            after = [names[i - 1]] if i else []
        else:
            after = [] if step == "start" else names[1:-1] if step == "join" else ["start"]
        lines.append(
            f"  - {{name: {step}, type: processing, command: python -c pass, resources: {{cpus: {cpus:g}}}, "
            f"after: [{', '.join(after)}]}}"
        )
    return "\n".join(lines) + "\n"


def metaflow_source(shape: str) -> str:
    cls = "Chain" if shape == "chain" else "FanOut"
    if shape == "chain":
        names = ["start", *[f"s{i:02d}" for i in range(1, STEPS - 1)], "end"]
        body = [
            f"    @step\n    def {s}(self):\n        self.next(self.{names[i + 1]})\n" for i, s in enumerate(names[:-1])
        ]
        body.append("    @step\n    def end(self):\n        pass\n")
    else:
        branches = [f"b{i:02d}" for i in range(WIDTH)]
        body = [f"    @step\n    def start(self):\n        self.next({', '.join('self.' + b for b in branches)})\n"]
        body += [f"    @step\n    def {b}(self):\n        self.next(self.join)\n" for b in branches]
        body.append("    @step\n    def join(self, inputs):\n        self.next(self.end)\n")
        body.append("    @step\n    def end(self):\n        pass\n")
    return (
        "from metaflow import FlowSpec, step\n\n\n"
        f"class {cls}(FlowSpec):\n" + "\n".join(body) + f"\n\nif __name__ == '__main__':\n    {cls}()\n"
    )


# Runners ------------------------------------------------------------------------------------------


def _spawn() -> None:
    subprocess.run(COMMAND, check=True)


def direct(shape: str, parallel: int) -> float:
    t0 = time.perf_counter()
    if shape == "chain":
        for _ in range(STEPS):
            _spawn()
    else:
        _spawn()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: _spawn(), range(WIDTH)))
        _spawn()
    return time.perf_counter() - t0


def metaflow(python: Path, flows: Path, shape: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(python), f"{shape}.py", "--no-pylint", "run"], cwd=flows, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        tail = done.stdout[-3000:] + done.stderr[-3000:]
        raise RuntimeError(f"metaflow {shape} failed (exit {done.returncode}):\n{tail}")
    return wall


@dataclass
class StratoRun:
    name: str
    wall: float  # run() called -> Succeeded seen by the 20 ms poll
    t0: float  # time.time() when run() was called
    run: dict[str, Any]
    events: dict[str, dict[str, float]] = field(default_factory=dict)  # step -> job state -> first time


def strato(client: Client, pipeline: str, run_name: str, *, profile: bool, timeout: float = 300.0) -> StratoRun:
    t0, p0 = time.time(), time.perf_counter()
    client.pipelines.run(pipeline, name=run_name)
    deadline = p0 + timeout
    while True:
        run = client.pipelines.get(run_name)
        if run["status"]["state"] in TERMINAL:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"pipeline run {run_name} still {run['status']['state']} after {timeout:g}s")
        time.sleep(POLL_S)
    wall = time.perf_counter() - p0
    if run["status"]["state"] != "Succeeded":
        raise RuntimeError(f"pipeline run {run_name} ended {run['status']['state']}: {run['status'].get('message')}")
    result = StratoRun(run_name, wall, t0, run)
    if profile:
        for step, state in run["status"]["steps"].items():
            if state.get("job"):
                seen: dict[str, float] = {}
                for event in client.jobs.events(state["job"]):
                    seen.setdefault(event["state"], event["at"])
                result.events[step] = seen
    return result


# Where the time goes ------------------------------------------------------------------------------


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def profile(runs: list[StratoRun]) -> dict[str, float | None]:
    """Median over runs of: the sum over steps of each phase (seconds), and the most jobs running at once."""
    phases: dict[str, list[float]] = {k: [] for k in ("to_first", "deps", "schedule", "process", "notice", "to_client")}
    concurrent: list[float] = []
    for r in runs:
        steps = r.run["status"]["steps"]
        started = [s["started_at"] for s in steps.values() if "started_at" in s]
        ended = [s["ended_at"] for s in steps.values() if "ended_at" in s]
        after = {s["name"]: s.get("after") or [] for s in r.run["status"]["pipeline_spec"]["steps"]}
        deps = schedule = process = notice = 0.0
        spans: list[tuple[float, float]] = []
        for name, step in steps.items():
            if after.get(name):  # its last dependency ended -> a pass started it (or found it cached)
                deps += step["started_at"] - max(steps[d]["ended_at"] for d in after[name])
            ev = r.events.get(name, {})
            first = ev.get("Starting")
            done = ev.get("Completed")
            if first is None or done is None:
                continue
            schedule += first - step["started_at"]  # step started (job applied) -> task being started
            process += done - first  # shim, runner, command, their exits, recorded Completed
            notice += step["ended_at"] - done  # job Completed -> the pipeline's pass sees it
            spans.append((first, done))
        phases["to_first"].append(min(started) - r.t0)
        phases["deps"].append(deps)
        phases["schedule"].append(schedule)
        phases["process"].append(process)
        phases["notice"].append(notice)
        phases["to_client"].append(r.t0 + r.wall - max(ended))
        points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        level = peak = 0
        for _, delta in points:
            level += delta
            peak = max(peak, level)
        concurrent.append(float(peak))
    out: dict[str, float | None] = {k: _median(v) for k, v in phases.items()}
    out["peak"] = _median(concurrent)
    return out


# Reporting ----------------------------------------------------------------------------------------

HEADER = (
    "scenario",
    "Strato s",
    "Metaflow s",
    "direct s",
    "overhead/step ms",
    "Metaflow/Strato",
    f"< {OVERHEAD_GOAL_MS:g} ms/step",
    f">= {METAFLOW_GOAL:g}x Metaflow",
    f"cached < {CACHED_GOAL_S:g} s",
)
PROFILE_HEADER = (
    "Strato run",
    "run() -> 1st step starts",
    "deps done -> step starts",
    "step start -> task starting",
    "task starting -> Completed",
    "Completed -> pipeline sees it",
    "last step -> client sees",
    "jobs at once",
)


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "FAIL"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for row in [header, *rows]:
            print(" | ".join(row))
        return
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(shutil.get_terminal_size().columns, 160)).print(table)


def markdown(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


# Main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each scenario; medians are reported")
    parser.add_argument("--cpus", type=float, default=1.0, help="resources.cpus of each Strato step (default 1)")
    parser.add_argument(
        "--also-tick", type=float, default=None, help="also run the Strato rows on a control plane with this tick"
    )
    parser.add_argument("--skip-metaflow", action="store_true", help="no Metaflow columns (no virtualenv made)")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (homes, Metaflow flows)")
    return parser.parse_args(argv)


def _phase(text: str) -> Callable[[], None]:
    print(f"... {text}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    return lambda: print(f"    done in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)


@dataclass
class StratoResults:
    tick: float
    cold: dict[str, list[StratoRun]]
    cached: dict[str, list[StratoRun]]


def run_plane(
    home: Path,
    tick: float | None,
    args: argparse.Namespace,
    peers: Callable[[str], None] | None,
) -> StratoResults:
    """Start a control plane, apply the four pipelines, run each scenario ``repeats`` times (calling
    ``peers(shape)`` before each Strato cold run, so the peers interleave), stop it."""
    flags: dict[str, Any] = {"port": 0, "tracking": False}
    if tick is not None:
        flags["tick_interval"] = tick
    settings = load_settings(home=home, environ={}, **flags)
    cold: dict[str, list[StratoRun]] = {"chain": [], "fan-out": []}
    cached: dict[str, list[StratoRun]] = {"chain": [], "fan-out": []}
    info = daemon.start(settings)
    tag = f"t{settings.tick_interval:g}".replace(".", "")
    try:
        with Client(info.url) as client:
            for shape in cold:
                short = shape.replace("-", "")
                for suffix, cache in (("cold", False), ("cached", True)):
                    yaml = strato_yaml(f"{short}-{suffix}", shape, cache, args.cpus)
                    client.apply(load_yaml_text(yaml)[0], base_dir=home.parent)
            done = _phase(f"Strato (tick {settings.tick_interval:g}s): warm-up and cache fill")
            for shape in cold:
                short = shape.replace("-", "")
                strato(client, f"{short}-cold", f"{tag}-{short}-warmup", profile=False)
                strato(client, f"{short}-cached", f"{tag}-{short}-fill", profile=False)
            done()
            for i in range(args.repeats):
                for shape in cold:
                    short = shape.replace("-", "")
                    done = _phase(f"repeat {i + 1}/{args.repeats}: {shape}")
                    if peers is not None:
                        peers(shape)
                    cold[shape].append(strato(client, f"{short}-cold", f"{tag}-{short}-cold-{i}", profile=True))
                    cached[shape].append(strato(client, f"{short}-cached", f"{tag}-{short}-cached-{i}", profile=True))
                    done()
    finally:
        daemon.stop(settings)
    return StratoResults(settings.tick_interval, cold, cached)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in [n for n in os.environ if n.startswith("STRATO_")]:
        del os.environ[name]  # the daemon inherits this environment
    cores = os.cpu_count() or 1
    parallel = max(1, min(WIDTH, int(cores // args.cpus)))
    tmp = Path(tempfile.mkdtemp(prefix="strato-bench-pipelines-"))
    flows = tmp / "metaflow"
    flows.mkdir()
    direct_walls: dict[str, list[float]] = {"chain": [], "fan-out": []}
    mf_walls: dict[str, list[float]] = {"chain": [], "fan-out": []}
    mf_python: Path | None = None
    mf_env = {**clean_environ(), "USERNAME": "strato-bench"}
    load_before = os.getloadavg()
    try:
        if not args.skip_metaflow:
            mf_python = metaflow_python()
            for shape in ("chain", "fan-out"):
                (flows / f"{shape}.py").write_text(metaflow_source(shape))
            done = _phase("Metaflow warm-up (creates its local datastore)")
            for shape in ("chain", "fan-out"):
                metaflow(mf_python, flows, shape, mf_env)
            done()
        for shape in ("chain", "fan-out"):
            direct(shape, parallel)  # warm-up

        def peers(shape: str) -> None:
            direct_walls[shape].append(direct(shape, parallel))
            if mf_python is not None:
                mf_walls[shape].append(metaflow(mf_python, flows, shape, mf_env))

        planes = [run_plane(tmp / "home", None, args, peers)]
        if args.also_tick is not None:
            planes.append(run_plane(tmp / "home-tick", args.also_tick, args, None))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows: list[tuple[str, ...]] = []
    prows: list[tuple[str, ...]] = []
    for k, plane in enumerate(planes):
        label = f" (tick {plane.tick:g}s)" if k else ""
        for shape in ("chain", "fan-out"):
            s = _median(r.wall for r in plane.cold[shape])
            m = _median(mf_walls[shape])
            d = _median(direct_walls[shape])
            over = None if s is None or d is None else (s - d) / STEPS * 1000
            ratio = None if m is None or not s else m / s
            rows.append((
                f"{shape}{label}",
                _s(s),
                _s(m),
                _s(d),
                "-" if over is None else f"{over:.0f}",
                "-" if ratio is None else f"{ratio:.1f}x",
                _verdict(over is not None and over < OVERHEAD_GOAL_MS) if shape == "chain" else "-",
                _verdict(None if ratio is None else ratio >= METAFLOW_GOAL),
                "-",
            ))  # fmt: skip
        for shape in ("chain", "fan-out"):
            c = _median(r.wall for r in plane.cached[shape])
            rows.append((f"cached {shape}{label}", _s(c), "-", "-", "-", "-", "-", "-",
                         _verdict(c is not None and c < CACHED_GOAL_S)))  # fmt: skip
        for what, runs in (("", plane.cold), ("cached ", plane.cached)):
            for shape in ("chain", "fan-out"):
                p = profile(runs[shape])
                per = [p[key] for key in ("to_first", "deps", "schedule", "process", "notice", "to_client")]
                cells = [_s(per[0]), *[("-" if v is None else f"{v / STEPS * 1000:.0f} ms") for v in per[1:5]]]
                prows.append((f"{what}{shape}{label}", *cells, _s(per[5]), f"{p['peak'] or 0:.0f}"))

    mf = f"Metaflow {METAFLOW_VERSION}" if mf_python is not None else "Metaflow skipped"
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    title = (
        f"{STEPS}-step no-op pipeline, medians of {args.repeats}: Strato (local backend, tick "
        f"{planes[0].tick:g}s, steps cpus={args.cpus:g}: {parallel} at once) vs {mf} vs direct; {machine()}; {load}"
    )
    print_table(HEADER, rows, title)
    ptitle = (
        "Where Strato's time goes (medians; first and last columns in s per run, the middle four are the "
        f"sum over steps / {STEPS}; on the fan-out they overlap; 'jobs at once' is the most tasks running together)"
    )
    print_table(PROFILE_HEADER, prows, ptitle)
    print(
        "Physical limit: a step cannot take less than one interpreter start (direct); a Strato step starts "
        "three (shim, runner, command). Metaflow's fan-out has one more step (its end cannot be a join)."
    )
    if args.markdown:
        args.markdown.write_text(f"{title}\n\n{markdown(HEADER, rows)}\n{ptitle}\n\n{markdown(PROFILE_HEADER, prows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
