#!/usr/bin/env python
"""Platform overhead of a training job: Strato against spawning the same command directly.

Claim (docs/benchmarks.md): a no-op training job costs at most 0.3 s more than running its command
with ``subprocess.run`` (SageMaker takes minutes, its local mode tens of seconds); the local backend
completes at least 10 no-op jobs per second on 2 cores; no job is ever lost or stuck.

One run, one machine, side by side:

* **Latency** - ``--sequential`` jobs one after another, each interleaved with one direct spawn of the
  same script (``subprocess.run([python, "noop.py"])``) so both see the same machine state. The
  script prints ``time.time()`` as its first act, so "user code started" is measured the same way for
  both (from the job's log for Strato). Times are ``time.time()`` on this machine: the client's clock
  before ``submit`` and the server's event timestamps (``jobs.events``) are the same clock.
* **Throughput** - ``--jobs`` no-op jobs submitted from ``--threads`` threads (one client per thread),
  then waited for; against the same number of direct spawns from the same number of threads. A job
  that was accepted but is unknown afterwards is *lost*; one not finished by ``--deadline`` is
  *stuck*; both (and any Failed job or rejected submit) make the script exit 1.

The physical limit named in the table: a job cannot finish faster than one interpreter start (the
direct spawn), and the machine cannot finish more jobs per second than ``cores / CPU-seconds per job``
(CPU of the control plane and every task process, measured through the daemon's rusage).

    .venv/bin/python benchmarks/job_overhead.py            # full run (~2-3 minutes on 2 cores)
    .venv/bin/python benchmarks/job_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import strato
from strato.client import Client
from strato.config import load_settings
from strato.errors import NotFound, Timeout
from strato.server import daemon

TERMINAL = {"Completed", "Failed", "Stopped"}
MARK = "strato-bench-start"
# A no-op whose only act is to say when it started (``time`` is built in: no import cost).
NOOP = f"import time\nprint('{MARK}', repr(time.time()), flush=True)\n"

OVERHEAD_GOAL_S = 0.3
THROUGHPUT_GOAL = 10.0


# Measurements -----------------------------------------------------------------------------------


def _started_at(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(MARK):
            return float(line.split()[1])
    return None


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _p95(values: Iterable[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    return present[min(len(present) - 1, round(0.95 * (len(present) - 1)))]


@dataclass
class DirectRun:
    started: float | None  # spawn -> script's first line
    done: float  # spawn -> subprocess.run returned


def direct_once(code: Path) -> DirectRun:
    t0 = time.time()
    out = subprocess.run([sys.executable, "noop.py"], cwd=code, capture_output=True, text=True, check=True)
    t1 = time.time()
    started = _started_at(out.stdout)
    return DirectRun(None if started is None else started - t0, t1 - t0)


@dataclass
class JobRun:
    name: str
    status: str
    submit: float  # duration of the submit call (snapshot check + POST)
    waited: float  # submit call -> wait() returned (client clock)
    events: dict[str, float]  # state -> seconds after the submit call began (server clock)
    started: float | None  # submit -> user code's first line (from the job's log)


def job_spec(name: str, code: Path, cpus: float | None) -> strato.TrainingJob:
    resources = {} if cpus is None else {"cpus": cpus}
    return strato.TrainingJob(name=name, code=str(code), command="python noop.py", resources=resources)


def strato_once(client: Client, name: str, code: Path, cpus: float | None, timeout: float) -> JobRun:
    t0 = time.time()
    job = client.jobs.submit(job_spec(name, code, cpus))
    t1 = time.time()
    with contextlib.suppress(Timeout):  # reported as a stuck job below, not as a crash of the benchmark
        job.wait(timeout=timeout)
    t2 = time.time()
    events: dict[str, float] = {}
    for event in client.jobs.events(name):
        events.setdefault(event["state"], event["at"] - t0)
    started = _started_at("".join(client.jobs.logs(name)))
    return JobRun(name, job.status, t1 - t0, t2 - t0, events, None if started is None else started - t0)


class CpuMeter:
    """CPU seconds (user + system) of one process, and of its reaped descendants, as (own, children)."""

    def __init__(self, pid: int | None = None):
        self.pid = pid

    def read(self) -> tuple[float, float]:
        if self.pid is None:  # this process: the client threads and the direct spawns
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime
        t = psutil.Process(self.pid).cpu_times()
        return t.user + t.system, t.children_user + t.children_system


@dataclass
class Throughput:
    label: str
    jobs: int
    wall: float  # first submit -> last completion
    completed: int
    failed: int = 0
    lost: int = 0
    stuck: int = 0
    rejected: int = 0  # submit raised
    cpu: float = 0.0  # CPU seconds of everything involved
    cpu_split: tuple[float, float, float] = (0.0, 0.0, 0.0)  # control plane, task processes, client
    submit_wall: float = 0.0  # first submit -> last submit call returned
    submit_calls: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # submit -> Completed event, per job
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.completed / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_per_job(self) -> float:
        return self.cpu / max(1, self.completed)

    @property
    def broken(self) -> int:
        return self.failed + self.lost + self.stuck + self.rejected


def direct_concurrent(code: Path, jobs: int, threads: int) -> Throughput:
    meter = CpuMeter()
    cpu0, t0 = sum(meter.read()), time.time()
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda _: direct_once(code), range(jobs)))
    wall = time.time() - t0
    return Throughput("direct", jobs, wall, completed=len(runs), cpu=sum(meter.read()) - cpu0)


def strato_concurrent(
    url: str, server_pid: int, code: Path, *, jobs: int, threads: int, cpus: float, prefix: str, deadline: float
) -> Throughput:
    names = [f"{prefix}-{i:04d}" for i in range(jobs)]
    local = threading.local()
    clients: list[Client] = []
    lock = threading.Lock()

    def client() -> Client:
        if not hasattr(local, "client"):
            local.client = Client(url)
            with lock:
                clients.append(local.client)
        return local.client

    def submit(name: str) -> tuple[str, float, float, str | None]:
        t = time.time()
        try:
            client().jobs.submit(job_spec(name, code, cpus))
            return name, t, time.time(), None
        except Exception as exc:  # counted, never raised: a rejected submit is a result
            return name, t, time.time(), f"{type(exc).__name__}: {exc}"

    server_cpu, own_cpu = CpuMeter(server_pid), CpuMeter()
    cpu0 = (*server_cpu.read(), own_cpu.read()[0])
    t_first = time.time()
    try:
        with ThreadPoolExecutor(threads) as pool:
            submitted = list(pool.map(submit, names))
    finally:
        for c in clients:
            c.close()
    t_submitted = max(end for _, _, end, _ in submitted)
    accepted = {name: start for name, start, _, error in submitted if error is None}
    result = Throughput(
        f"strato cpus={cpus:g}",
        jobs,
        0.0,
        0,
        submit_wall=t_submitted - t_first,
        submit_calls=[end - start for _, start, end, _ in submitted],
    )
    result.rejected = jobs - len(accepted)
    result.problems += [f"{name}: submit failed: {error}" for name, _, _, error in submitted if error]

    # Wait: follow the oldest unfinished job, so each poll costs one or two GETs, not a list of all.
    monitor = Client(url)
    try:
        pending = [n for n in names if n in accepted]
        until = time.monotonic() + deadline
        while pending and time.monotonic() < until:
            try:
                now = monitor.jobs.get(pending[0]).status
            except NotFound:
                now = "Lost"  # counted below
            if now in TERMINAL or now == "Lost":
                pending.pop(0)
                continue
            time.sleep(0.2)
        cpu1 = (*server_cpu.read(), own_cpu.read()[0])
        # The final count comes from one listing of everything the server knows.
        known = {j.name: j.status for j in monitor.jobs.list() if j.name.startswith(prefix + "-")}
        ends: list[float] = []
        for name in accepted:
            state = known.get(name)
            if state is None:
                result.lost += 1
                result.problems.append(f"{name}: accepted but unknown to the server")
            elif state == "Completed":
                result.completed += 1
                at = next((e["at"] for e in monitor.jobs.events(name) if e["state"] == "Completed"), None)
                if at is not None:
                    ends.append(at)
                    result.latencies.append(at - accepted[name])
            elif state in TERMINAL:
                result.failed += 1
                result.problems.append(f"{name}: {state}: {monitor.jobs.get(name).message[:300]}")
            else:
                result.stuck += 1
                result.problems.append(f"{name}: still {state} after {deadline:g}s")
    finally:
        monitor.close()
    result.wall = (max(ends) if ends else time.time()) - t_first
    split = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
    result.cpu, result.cpu_split = sum(split), split
    return result


# Reporting --------------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.1f}x"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def latency_rows(direct: list[DirectRun], runs: list[JobRun]) -> list[Row]:
    d_start = _median(r.started for r in direct)
    d_done = _median(r.done for r in direct)
    s_submit = _median(r.submit for r in runs)
    s_starting = _median(r.events.get("Starting") for r in runs)
    s_user = _median(r.started for r in runs)
    with_running = [r.events["Running"] for r in runs if "Running" in r.events]
    s_completed = _median(r.events.get("Completed") for r in runs)
    s_waited = _median(r.waited for r in runs)
    over_wait = None if s_waited is None or d_done is None else s_waited - d_done
    over_event = None if s_completed is None or d_done is None else s_completed - d_done
    n = len(runs)
    return [
        ("submit call returns (snapshot check + POST)", _s(s_submit), "-", "-", "", ""),
        ("submit -> Starting event (shim spawned)", _s(s_starting), "-", "-", "", ""),
        ("submit -> user code starts (its log)", _s(s_user), _s(d_start), _ratio(s_user, d_start), "", ""),
        (
            f"submit -> Running event, as recorded ({len(with_running)}/{n} jobs have one)",
            _s(_median(with_running)),
            "-",
            "-",
            "",
            "",
        ),
        ("submit -> Completed event (server clock)", _s(s_completed), _s(d_done), _ratio(s_completed, d_done), "", ""),
        ("submit -> wait() returns (client)", _s(s_waited), _s(d_done), _ratio(s_waited, d_done), "", ""),
        (
            "overhead: Completed event - direct",
            _s(over_event),
            "0",
            "-",
            f"<= {OVERHEAD_GOAL_S} s",
            _verdict(over_event is not None and over_event <= OVERHEAD_GOAL_S),
        ),
        (
            "overhead: wait() returns - direct",
            _s(over_wait),
            "0",
            "-",
            f"<= {OVERHEAD_GOAL_S} s",
            _verdict(over_wait is not None and over_wait <= OVERHEAD_GOAL_S),
        ),
    ]


def throughput_rows(peer: Throughput, run: Throughput, cores: int, threads: int) -> list[Row]:
    label = run.label.removeprefix("strato ").replace("=", " ")
    per = [c / max(1, run.completed) for c in run.cpu_split]
    ceiling = cores / run.cpu_per_job if run.cpu_per_job else None
    peer_ceiling = cores / peer.cpu_per_job if peer.cpu_per_job else None
    return [
        (
            f"({label}) {run.jobs} jobs / {threads} threads: jobs per second",
            f"{run.rate:.1f}/s",
            f"{peer.rate:.1f}/s",
            _ratio(peer.rate, run.rate) + " slower",
            f">= {THROUGHPUT_GOAL:g}/s",
            _verdict(run.rate >= THROUGHPUT_GOAL),
        ),
        (
            f"({label}) completed / failed / lost / stuck / rejected",
            f"{run.completed}/{run.failed}/{run.lost}/{run.stuck}/{run.rejected}",
            f"{peer.completed}/0/0/0/0",
            "-",
            "0 broken",
            _verdict(run.broken == 0),
        ),
        (
            f"({label}) CPU per job (control plane + tasks + client)",
            _s(run.cpu_per_job),
            _s(peer.cpu_per_job),
            _ratio(run.cpu_per_job, peer.cpu_per_job),
            "",
            "",
        ),
        (f"({label})   of which control plane / tasks / client", " / ".join(f"{c:.3f}" for c in per), "-", "-", "", ""),
        (
            f"({label}) limit: {cores} cores / CPU per job",
            f"{ceiling:.1f}/s" if ceiling else "-",
            f"{peer_ceiling:.1f}/s" if peer_ceiling else "-",
            "-",
            "",
            "",
        ),
        (f"({label}) all submit calls returned after", _s(run.submit_wall), "-", "-", "", ""),
        (
            f"({label}) submit call, median / p95",
            f"{_s(_median(run.submit_calls))} / {_s(_p95(run.submit_calls))}",
            "-",
            "-",
            "",
            "",
        ),
        (
            f"({label}) submit -> Completed event, median / p95",
            f"{_s(_median(run.latencies))} / {_s(_p95(run.latencies))}",
            "-",
            "-",
            "",
            "",
        ),
    ]


HEADER = ("metric", "Strato", "direct spawn", "ratio", "goal", "result")


def print_table(rows: list[Row], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a Strato dependency, but a plain table is enough
        print(title)
        for row in [HEADER, *rows]:
            print(" | ".join(row))
        return
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(shutil.get_terminal_size().columns, 150)).print(table)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        )
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    memory = psutil.virtual_memory().total / 1024**3
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB RAM, Python {sys.version.split()[0]}"


# Main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sequential", type=int, default=20, help="jobs (and direct spawns) for latency")
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted concurrently")
    parser.add_argument("--threads", type=int, default=8, help="threads submitting them")
    parser.add_argument(
        "--cpus", default="0.25,1", help="comma-separated resources.cpus of the concurrent no-op jobs, one run each"
    )
    parser.add_argument(
        "--tick-interval",
        type=float,
        default=None,
        help="control plane reconcile tick (default: the platform's default)",
    )
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds before a job counts as stuck")
    parser.add_argument(
        "--tracking", choices=["on", "off"], default="on", help="every job an MLflow run (the default) or not"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home (to inspect its log)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 sequential, 20 concurrent jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sequential, args.jobs = min(args.sequential, 5), min(args.jobs, 20)
    args.cpus = [float(c) for c in args.cpus.split(",") if c.strip()]
    return args


def _phase(text: str) -> Callable[[], None]:
    print(f"... {text}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    return lambda: print(f"    done in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The daemon inherits this environment: no STRATO_* setting of the caller may change what is measured.
    for name in [n for n in os.environ if n.startswith("STRATO_")]:
        del os.environ[name]
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="strato-bench-jobs-"))
    code = tmp / "code"
    code.mkdir()
    (code / "noop.py").write_text(NOOP)
    flags: dict[str, Any] = {"port": 0, "tracking": args.tracking == "on"}
    if args.tick_interval is not None:
        flags["tick_interval"] = args.tick_interval
    settings = load_settings(home=tmp / "home", environ={}, **flags)
    rows: list[Row] = []
    results: list[Throughput] = []
    try:
        done = _phase(f"starting a control plane in {settings.home}")
        info = daemon.start(settings)
        done()
        with Client(info.url) as client:
            client.wait_ready()  # the managed MLflow server: jobs wait for it once, not measured
            done = _phase(f"latency: {args.sequential} no-op jobs, each after one direct spawn")
            for i in range(2):  # warm-up: first snapshot upload, caches, interpreter pages
                direct_once(code)
                strato_once(client, f"warmup-{i}", code, None, args.deadline)
            direct: list[DirectRun] = []
            runs: list[JobRun] = []
            for i in range(args.sequential):
                direct.append(direct_once(code))
                runs.append(strato_once(client, f"seq-{i:03d}", code, None, args.deadline))
            done()
        bad = [r for r in runs if r.status != "Completed"]
        rows += latency_rows(direct, runs)

        for cpus in args.cpus:
            done = _phase(f"throughput: {args.jobs} direct spawns from {args.threads} threads")
            peer = direct_concurrent(code, args.jobs, args.threads)
            done()
            done = _phase(
                f"throughput: {args.jobs} no-op jobs with resources.cpus={cpus:g} from {args.threads} threads"
            )
            run = strato_concurrent(
                info.url,
                info.pid,
                code,
                jobs=args.jobs,
                threads=args.threads,
                cpus=cpus,
                prefix=f"c{str(cpus).replace('.', '_')}",
                deadline=args.deadline,
            )
            done()
            results.append(run)
            rows += throughput_rows(peer, run, cores, args.threads)
    finally:
        daemon.stop(settings)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    tick = settings.tick_interval
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    title = (
        f"Training job overhead: Strato local backend vs subprocess.run, medians of {args.sequential} "
        f"sequential jobs; {machine()}; tick_interval={tick:g}s; tracking {args.tracking}; {load}"
    )
    print_table(rows, title)
    print(
        f"Sequential jobs use the default resources (cpus=1): latency does not depend on them. Concurrent "
        f"runs use resources.cpus of {', '.join(f'{c:g}' for c in args.cpus)}: the local backend hands out "
        f"{cores} CPUs, so a job declaring cpus=c runs at most {cores}/c at once (cpus=1 caps it at "
        f"{cores}; a no-op needs far less than a core, which cpus=0.25 says)."
    )
    print(
        "Physical limit: a job cannot end before one interpreter start (the direct spawn); a Strato job "
        "starts three (shim, runner, user command) plus the control plane's work, and the machine "
        "cannot finish more than cores / CPU-seconds-per-job jobs per second."
    )
    if args.markdown:
        args.markdown.write_text(f"{title}\n\n{markdown(rows)}")

    broken = [p for r in results for p in r.problems] + [f"{r.name}: {r.status}" for r in bad]
    if broken:
        print(f"\n{len(broken)} job(s) broken (lost, stuck, failed or rejected):", file=sys.stderr)
        for line in broken[:20]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
