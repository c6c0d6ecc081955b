#!/usr/bin/env python
"""Online inference: a Strato endpoint against `mlflow models serve` and a bare ASGI app, under wrk.

Claim (docs/benchmarks.md, issue 5): on the same scikit-learn model and the same requests, a Strato
endpoint serves at least 5x the requests per second of ``mlflow models serve`` at concurrency 16 and
64 and at least half the bare app's; adds at most 1 ms to the bare app's p50 at concurrency 1; with
adaptive batching, at least 3x the unbatched throughput at concurrency 64 for a model with a per-call
overhead; and starts from zero to its first answer in a median under 1.5 s.

One run, one machine, side by side:

* **Model.** Logistic regression on scikit-learn's bundled iris, saved as an MLflow model with a
  signature; one JSON row per request (``dataframe_split``), the same body for every server.
* **Load.** ``wrk`` (C, from Debian's packages: ``apt-get install wrk``) with a Lua script for the POST
  body, 2 threads, ``--duration`` seconds per point, at concurrency 1, 16 and 64; requests/s and the
  p50/p99 wrk reports. Non-2xx answers are counted and reported.
* **Peers.** (1) the bare app: one uvicorn process (httptools, uvloop) whose handler parses the JSON,
  calls ``model.predict`` on the rows as an array, with no checks - the limit of one Python process; (2)
  ``mlflow models serve --env-manager local`` with its defaults. **Strato**: a control plane with an
  ``Endpoint`` of one replica (router in the control plane, replica process behind it), without and
  with adaptive batching.
* **Batching.** The same three-way comparison is not needed: a pyfunc model that costs 4 ms per call
  plus a little per row (a GPU kernel launch, a remote feature lookup) behind a Strato endpoint with
  and without batching, at concurrency 64.
* **Cold start.** An endpoint with ``replicas.min: 0`` scaled to zero; the time from a request to its
  answer (held while a replica starts, model files cached); against starting ``mlflow models serve``
  and polling until its first answer. Medians of ``--cold-starts`` tries.

    .venv/bin/python benchmarks/serving.py              # full run (~5 minutes on 2 cores)
    .venv/bin/python benchmarks/serving.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[6.7, 3.0, 5.2, 2.3]]}})
GOALS = {"vs_mlflow": 5.0, "vs_bare": 0.5, "p50_added_ms": 1.0, "batching": 3.0, "cold_start_s": 1.5, "capture": 0.05}


@dataclass
class Point:
    server: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int = 0
    timeouts: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_answer(url: str, timeout: float = 120.0) -> float:
    """Seconds until ``url`` answers the body with 200 (polling)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            r = httpx.post(url, content=BODY, headers={"content-type": "application/json"}, timeout=timeout)
            if r.status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


# Models ------------------------------------------------------------------------------------------------
def save_models(root: Path) -> dict[str, Path]:
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    model = LogisticRegression(max_iter=500).fit(x, y)
    iris = root / "iris"
    mlflow.sklearn.save_model(model, str(iris), signature=infer_signature(x, model.predict(x)))

    class PerCallOverhead(mlflow.pyfunc.PythonModel):  # 4 ms a call, 20 us a row
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            time.sleep(0.004 + 0.00002 * len(model_input))
            return np.zeros(len(model_input), dtype=np.int64)

    slow = root / "per-call"
    mlflow.pyfunc.save_model(str(slow), python_model=PerCallOverhead(), signature=infer_signature(x, model.predict(x)))
    return {"iris": iris, "per-call": slow}


# The bare app ------------------------------------------------------------------------------------------
def bare_app(model_dir: str) -> Any:
    import warnings

    import mlflow.sklearn
    import numpy as np

    model = mlflow.sklearn.load_model(model_dir)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        split = json.loads(body)["dataframe_split"]
        predictions = model.predict(np.asarray(split["data"], dtype=float))  # no column checks: the limit
        out = json.dumps({"predictions": predictions.tolist()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def run_bare(model_dir: str, port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(model_dir), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)  # fmt: skip


# Load --------------------------------------------------------------------------------------------------
def wrk(url: str, concurrency: int, duration: float, script: Path) -> Point:
    threads = min(2, concurrency)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration:g}s", "--latency", "-s", str(script),
         "--timeout", "10s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = int(errors.group(1)) if errors else 0
    failed = non_2xx + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    timeouts = int(socket_errors.group(4)) if socket_errors else 0
    return Point("", concurrency, rps, percentile("50"), percentile("99"), failed, non_2xx, timeouts)


def load_points(name: str, url: str, args: argparse.Namespace, script: Path) -> list[Point]:
    wrk(url, 16, min(2.0, args.duration), script)  # warm up: connections, caches, first-call costs
    points = []
    for concurrency in args.concurrency:
        point = wrk(url, concurrency, args.duration, script)
        point.server = name
        points.append(point)
        print(f"  {name:>18} c={concurrency:<3} {point.rps:9.0f} req/s  p50 {point.p50_ms:7.2f} ms  "
              f"p99 {point.p99_ms:7.2f} ms  errors {point.errors}", flush=True)  # fmt: skip
    return points


# Servers -----------------------------------------------------------------------------------------------
class Process:
    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def mlflow_serve(model_dir: Path, port: int) -> Process:
    bin_dir = str(Path(sys.executable).parent)  # it starts ``uvicorn`` from PATH
    return Process([f"{bin_dir}/mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                    "-p", str(port), "-h", "127.0.0.1"], env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per point")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 s per point, 2 cold starts")
    parser.add_argument("--bare-app", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_app:
        run_bare(args.bare_app[0], int(args.bare_app[1]))
        return 0
    if args.quick:
        args.duration, args.cold_starts = 3.0, 2
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    from strato.client import Client
    from strato.config import load_settings
    from strato.server import daemon
    from strato.specs.endpoint import Endpoint

    work = Path(tempfile.mkdtemp(prefix="strato-bench-serving-"))
    os.environ["STRATO_WARM_DIR"] = str(work / "warm")  # this run's warm pools, stopped at its end
    script = work / "post.lua"
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n")
    models = save_models(work / "models")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    points: list[Point] = []
    cold: dict[str, list[float]] = {"strato": [], "mlflow models serve": []}
    batching: dict[str, Point] = {}

    # The bare app and mlflow models serve, one at a time (the machine has 2 cores).
    port = free_port()
    bare = Process([sys.executable, __file__, "--bare-app", str(models["iris"]), str(port)])
    try:
        wait_answer(f"http://127.0.0.1:{port}/invocations")
        points += load_points("bare app", f"http://127.0.0.1:{port}/invocations", args, script)
    finally:
        bare.stop()
    for i in range(args.cold_starts + 1):
        port = free_port()
        began = time.perf_counter()
        served = mlflow_serve(models["iris"], port)
        try:
            wait_answer(f"http://127.0.0.1:{port}/invocations")
            if i > 0:  # the first start also warms the page cache, for both servers' sake
                cold["mlflow models serve"].append(time.perf_counter() - began)
            if i == args.cold_starts:
                points += load_points("mlflow models serve", f"http://127.0.0.1:{port}/invocations", args, script)
        finally:
            served.stop()

    settings = load_settings(home=work / "home", environ={}, port=0, tracking=False)
    info = daemon.start(settings)
    client = Client(info.url, settings.token_path.read_text().strip())
    try:
        for name, batched in (("strato", False), ("strato (batching)", True)):
            client.endpoints.apply(Endpoint(
                name="iris", variants=[{"model": str(models["iris"])}],
                batching={"enabled": batched, "max_batch_size": 32, "max_wait": "2ms"},
            ))  # fmt: skip
            wait_until_serving(client, "iris", batched)
            points += load_points(name, f"{info.url}/endpoints/iris/invocations", args, script)
        # Data capture of every request (sampled and queued on the request path, written by a thread),
        # alternating with capture off on the same replica (capture is the router's: no restart).
        capture: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(2):
            for on in (False, True):
                client.endpoints.apply(Endpoint(name="iris", variants=[{"model": str(models["iris"])}],
                                                data_capture={"enabled": on}))  # fmt: skip
                wait_until_serving(client, "iris", False)
                wait_until_capture(client, "iris", on)
                capture[on].append(wrk(f"{info.url}/endpoints/iris/invocations", 16, args.duration, script).rps)
        print(f"  data capture at c=16: {statistics.median(capture[True]):.0f} req/s on, "
              f"{statistics.median(capture[False]):.0f} off", flush=True)  # fmt: skip
        # Overload: far more concurrent requests than the replica may hold; the router answers 429 at once.
        client.endpoints.apply(Endpoint(name="iris", variants=[{"model": str(models["iris"])}],
                                        limits={"max_in_flight": 8}))  # fmt: skip
        wait_until_serving(client, "iris", False)
        overload = wrk(f"{info.url}/endpoints/iris/invocations", 256, args.duration, script)
        overload.server = "strato, overloaded"
        print(f"  overload c=256, max_in_flight 8: {overload.rps:.0f} answers/s, {overload.non_2xx} non-2xx (429), "
              f"p99 {overload.p99_ms:.1f} ms, {overload.timeouts} timeouts", flush=True)  # fmt: skip
        delete(client, "iris")  # one replica at a time on 2 cores
        for batched in (False, True):
            client.endpoints.apply(Endpoint(
                name="per-call", variants=[{"model": str(models["per-call"])}], limits={"max_in_flight": 1000},
                batching={"enabled": batched, "max_batch_size": 32, "max_wait": "5ms"},
            ))  # fmt: skip
            wait_until_serving(client, "per-call", batched)
            url = f"{info.url}/endpoints/per-call/invocations"
            wrk(url, 16, 2.0, script)
            point = wrk(url, 64, args.duration, script)
            point.server = "per-call model" + (" (batching)" if batched else "")
            batching["on" if batched else "off"] = point
            print(f"  {point.server:>28} c=64 {point.rps:9.0f} req/s  p50 {point.p50_ms:7.2f} ms  "
                  f"p99 {point.p99_ms:7.2f} ms  errors {point.errors}", flush=True)  # fmt: skip
        delete(client, "per-call")
        for _ in range(args.cold_starts):
            client.endpoints.apply(Endpoint(
                name="iris", variants=[{"model": str(models["iris"]), "replicas": {"min": 0, "max": 1}}],
                autoscaling={"idle_timeout": "1s", "downscale_delay": 0},
            ))  # fmt: skip
            deadline = time.monotonic() + 120
            while not scaled_to_zero(client.endpoints.get("iris")):
                if time.monotonic() > deadline:
                    raise RuntimeError("the endpoint did not scale to zero")
                time.sleep(0.1)
            cold["strato"].append(wait_answer(f"{info.url}/endpoints/iris/invocations"))
            client.endpoints.apply(Endpoint(name="iris", variants=[{"model": str(models["iris"])}]))
            client.endpoints.wait("iris")
    finally:
        for endpoint in client.list("endpoints"):
            client.delete("endpoints", endpoint["name"])
        deadline = time.monotonic() + 60
        while client.list("endpoints") and time.monotonic() < deadline:
            time.sleep(0.2)
        client.close()
        daemon.stop(settings)
        for lock in (work / "warm").glob("*.lock"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(lock.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    return report(started, points, batching, cold, overload, capture)


def wait_until_capture(client: Any, name: str, on: bool) -> None:
    """Until the router has the spec's data capture setting (published by the reconciler's next pass)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        endpoint = client.endpoints.get(name)
        if endpoint["spec"]["data_capture"]["enabled"] == on and endpoint["status"]["state"] == "InService":
            time.sleep(0.5)  # the pass that published the routes has run; give the next one room
            return
        time.sleep(0.1)
    raise RuntimeError(f"endpoint {name} did not take data capture {on}")


def scaled_to_zero(endpoint: dict[str, Any]) -> bool:
    variant = endpoint["status"].get("variants", {}).get("default")
    return bool(variant) and variant["desired"] == 0 and not variant["replicas"]


def delete(client: Any, name: str) -> None:
    client.delete("endpoints", name)
    deadline = time.monotonic() + 60
    while any(e["name"] == name for e in client.list("endpoints")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} was not deleted")
        time.sleep(0.1)


def wait_until_serving(client: Any, name: str, batched: bool) -> None:
    """In service with one ready replica of the spec just applied (batching setting included)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        endpoint = client.endpoints.get(name)
        status = endpoint["status"]
        replicas = [r for v in status.get("variants", {}).values() for r in v["replicas"]]
        one_ready = len(replicas) == 1 and replicas[0]["state"] == "Ready"
        if status["state"] == "InService" and one_ready and endpoint["spec"]["batching"]["enabled"] == batched:
            return
        time.sleep(0.1)
    raise RuntimeError(f"endpoint {name} did not come into service: {client.endpoints.get(name)['status']}")


def report(
    started: str,
    points: list[Point],
    batching: dict[str, Point],
    cold: dict[str, list[float]],
    overload: Point,
    capture: dict[bool, list[float]],
) -> int:
    def at(server: str, c: int) -> Point:
        return next(p for p in points if p.server == server and p.concurrency == c)

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")  # fmt: skip
    print(f"\nRun {started}; {os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| server | concurrency | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for p in points:
        print(f"| {p.server} | {p.concurrency} | {p.rps:.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.errors} |")
    concurrencies = sorted({p.concurrency for p in points})
    verdicts = []
    for c in concurrencies:
        strato, bare, mlflow = at("strato", c), at("bare app", c), at("mlflow models serve", c)
        vs_mlflow, vs_bare = strato.rps / mlflow.rps, strato.rps / bare.rps
        line = f"c={c}: strato / mlflow models serve = {vs_mlflow:.1f}x, strato / bare app = {vs_bare:.2f}"
        if c >= 16:
            verdicts.append(vs_mlflow >= GOALS["vs_mlflow"] and vs_bare >= GOALS["vs_bare"])
        if c == 1:
            added = strato.p50_ms - bare.p50_ms
            line += f", added p50 {added:.2f} ms"
            verdicts.append(added <= GOALS["p50_added_ms"])
        print(line)
    if batching:
        gain = batching["on"].rps / batching["off"].rps
        print(f"per-call model at c=64: batching {batching['on'].rps:.0f} req/s vs {batching['off'].rps:.0f} "
              f"unbatched = {gain:.1f}x (goal >= {GOALS['batching']:g}x)")  # fmt: skip
        verdicts.append(gain >= GOALS["batching"])
    for name, values in cold.items():
        if values:
            print(f"cold start to first answer, {name}: median {statistics.median(values):.2f} s over {len(values)}")
    if cold["strato"]:
        verdicts.append(statistics.median(cold["strato"]) <= GOALS["cold_start_s"])
    print(f"overload (c=256 against max_in_flight 8): {overload.rps:.0f} answers/s of which {overload.non_2xx} were "
          f"429 over the run, p99 {overload.p99_ms:.1f} ms, {overload.timeouts} timeouts")  # fmt: skip
    verdicts.append(overload.timeouts == 0 and overload.p99_ms < 1000)
    cost = 1 - statistics.median(capture[True]) / statistics.median(capture[False])
    print(f"data capture of every request at c=16: {statistics.median(capture[True]):.0f} req/s against "
          f"{statistics.median(capture[False]):.0f} without, {cost:.1%} slower (goal <= {GOALS['capture']:.0%})")
    verdicts.append(cost <= GOALS["capture"])
    passed = all(verdicts)
    print(f"\nGoals (5x mlflow and 0.5x bare at c>=16, +1 ms p50 at c=1, 3x batching, cold start <= 1.5 s, "
          f"overload answered with 429s: p99 < 1 s, no timeouts, data capture <= 5%): "
          f"{'PASS' if passed else 'FAIL'}")  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
