#!/usr/bin/env python
"""Online feature reads: Strato (in-process SDK and REST) against Feast's online read, SQLite and Redis.

Claim (issue: feature store): reading 50 float features of 1 entity in-process has a p99 under 1 ms; over
REST a p99 under 2 ms for 1 entity and under 10 ms for 100 entities; and the in-process read is at least 5x
faster (p99) than Feast's ``get_online_features`` on the same kind of store, at 1 and at 100 entities. The
limits on this kind of machine: a SQLite primary-key read of a 50-float row is ~17 us, a loopback HTTP
round trip ~90 us.

One run, one machine, side by side:

* **Data.** One entity (``driver_id``, int64), one feature view ``driver_stats`` of 50 float64 features
  (``f00`` ... ``f49``), one row for each of 10,000 entities, event times within the last day, TTL 7 days,
  so every read is PRESENT. Generated with seeded numpy, written as a lake table for Strato and as Parquet
  for Feast's ``FileSource``. A feature service ``svc`` of the 50 features on both sides.
* **Strato.** Per store (SQLite, the default file in the home; Redis at ``redis://127.0.0.1:6379/0?prefix=
  <random>``, whose keys are deleted after): a control plane in a temporary home, the definitions applied,
  ``materialize``; then (a) ``client.features.get_online_features({"driver_id": ids}, "svc")`` in this
  process (straight to the store) and (b) ``POST /api/v1/features/online`` with a keep-alive
  ``httpx.Client`` and the token header.
* **Feast** (in its own virtualenv, benchmarks/.feast-venv, see _feast_env.py; the ``redis`` extra is added
  to it when missing): a feature repo in a temporary folder (local provider, ``sqlite`` online store, or
  ``redis`` with ``connection_string: 127.0.0.1:6379,db=0`` and a project name unique to the run, whose keys
  are deleted after), ``apply``, ``materialize``, then ``store.get_online_features(features=svc,
  entity_rows={"driver_id": ids}).to_dict()`` - the same columnar entity rows Strato gets.
* **Timing.** Random ids for every call (drawn before the clock starts), a warm-up, then ``--calls`` calls
  of 1 entity and ``--calls-100`` calls of 100 entities, one at a time; p50 and p99 of the calls. Every
  path's answer is checked against the generated rows once.

The REST rows are not compared with Feast (Feast's read here is in-process); their ratio is shown for
reference. p99 on a loaded 2-core machine is noisy: look at the ratios of one run.

    .venv/bin/python benchmarks/features_online.py                       # everything: ~1.5 min on 2 cores
    .venv/bin/python benchmarks/features_online.py --stores sqlite --skip-feast
    .venv/bin/python benchmarks/features_online.py --calls 500 --profile # cProfile the 1-entity SDK read

Exits 1 when a read returns wrong values; missed time goals show as FAIL in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ENTITIES = 10_000
FEATURES = tuple(f"f{i:02d}" for i in range(50))
KEY = "driver_id"
VIEW = "driver_stats"
SERVICE = "svc"
TTL_DAYS = 7
SIZES = (1, 100)
WARMUP = 200
REDIS = "127.0.0.1:6379"
GOALS = {"sdk_p99_ms_1": 1.0, "rest_p99_ms_1": 2.0, "rest_p99_ms_100": 10.0, "vs_feast": 5.0}
CHECK_IDS = [0, 1, 4_999, ENTITIES - 1]


# ---- shared by both sides (standard library only at module level: the Feast side runs from its venv) ------


def make_table(seed: int, now: float) -> Any:
    """One row per entity: driver_id, event_timestamp within the last day (UTC, us), 50 float64 features."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    ids = rng.permutation(ENTITIES).astype(np.int64)  # not in id order, as data arrives
    ages_us = rng.integers(60 * 1_000_000, 86_400 * 1_000_000, ENTITIES, dtype=np.int64)
    times = np.int64(int(now * 1_000_000)) - ages_us
    columns: dict[str, Any] = {KEY: ids, "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC"))}
    values = rng.standard_normal((len(FEATURES), ENTITIES))
    for i, name in enumerate(FEATURES):
        columns[name] = values[i]
    return pa.table(columns)


def id_batches(seed: int, size: int, calls: int) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng([seed, size])
    return rng.integers(0, ENTITIES, (calls, size), dtype=np.int64).tolist()


def expected_rows(parquet: Path, ids: list[int]) -> dict[int, list[float]]:
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    key = table.column(KEY).to_pylist()
    where = {k: i for i, k in enumerate(key)}
    columns = [table.column(f).to_pylist() for f in FEATURES]
    return {i: [c[where[i]] for c in columns] for i in ids}


def check_answer(answer: dict[str, Any], ids: list[int], expected: dict[int, list[float]]) -> str:
    """'' when every feature of every id matches the generated rows, else what differs."""
    if list(answer.get(KEY, [])) != ids:
        return f"{KEY} came back as {answer.get(KEY)!r}, asked {ids!r}"
    for j, name in enumerate(FEATURES):
        got = list(answer.get(name, []))
        want = [expected[i][j] for i in ids]
        if got != want:
            return f"feature {name}: got {got!r}, expected {want!r}"
    return ""


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] * 1000

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "calls": len(ordered)}


def time_calls(call: Any, batches: list[list[int]], warmup: int) -> dict[str, float]:
    for ids in batches[:warmup]:
        call(ids)
    timings = []
    clock = time.perf_counter
    for ids in batches[warmup:]:
        started = clock()
        call(ids)
        timings.append(clock() - started)
    return percentiles(timings)


# ---- Feast (runs in benchmarks/.feast-venv) ----------------------------------------------------------------


def feast_child(args: argparse.Namespace) -> None:
    import logging
    import shutil
    import warnings
    from datetime import UTC, datetime, timedelta

    import feast
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    parquet = Path(args.data)
    repo = Path(tempfile.mkdtemp(prefix="strato-bench-feast-online-"))
    project = f"bench_{uuid.uuid4().hex[:10]}"
    online = (
        "online_store:\n  type: sqlite\n  path: online.db\n"
        if args.store == "sqlite"
        else f"online_store:\n  type: redis\n  connection_string: '{REDIS},db=0'\n"
    )
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: registry.db\nprovider: local\n{online}"
        "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
    out: dict[str, Any] = {"feast": feast.__version__, "store": args.store, "results": {}}
    store = FeatureStore(repo_path=str(repo))
    try:
        driver = Entity(name="driver", join_keys=[KEY], value_type=ValueType.INT64)
        view = FeatureView(
            name=VIEW, entities=[driver], ttl=timedelta(days=TTL_DAYS),
            schema=[Field(name=KEY, dtype=Int64)] + [Field(name=f, dtype=Float64) for f in FEATURES],
            source=FileSource(name=VIEW, path=str(parquet), timestamp_field="event_timestamp"),
        )  # fmt: skip
        service = FeatureService(name=SERVICE, features=[view])
        store.apply([driver, view, service])
        now = datetime.fromtimestamp(args.now, UTC)
        started = time.perf_counter()
        store.materialize(start_date=now - timedelta(days=2), end_date=now + timedelta(minutes=1))
        out["materialize_s"] = time.perf_counter() - started
        svc = store.get_feature_service(SERVICE)

        def read(ids: list[int]) -> dict[str, Any]:
            return store.get_online_features(features=svc, entity_rows={KEY: ids}).to_dict()

        expected = expected_rows(parquet, CHECK_IDS)
        out["check"] = check_answer(read(CHECK_IDS), CHECK_IDS, expected)
        for size, calls in ((1, args.calls), (100, args.calls_100)):
            batches = id_batches(args.seed, size, calls + WARMUP)
            out["results"][str(size)] = time_calls(read, batches, WARMUP)
    finally:
        with_store_cleanup(store, args.store, project)
        shutil.rmtree(repo, ignore_errors=True)
    print(json.dumps(out), flush=True)


def with_store_cleanup(store: Any, kind: str, project: str) -> None:
    """Feast's teardown deletes its Redis keys; a SCAN of the project's key suffix makes sure."""
    try:
        store.teardown()
    except Exception as exc:  # cleanup must not hide the results
        print(f"feast teardown failed: {exc}", file=sys.stderr)
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(f"redis://{REDIS}/0")
        keys = list(client.scan_iter(match=b"*" + project.encode(), count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()


def run_feast(store: str, parquet: Path, args: argparse.Namespace, now: float) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _feast_env import FEAST_VERSION, feast_python

    python = feast_python()
    if store == "redis":
        ensure_redis_extra(python, FEAST_VERSION)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["FEAST_USAGE"] = "False"
    command = [str(python), "-W", "ignore", __file__, "--feast-child", "--store", store, "--data", str(parquet),
               "--now", repr(now), "--seed", str(args.seed), "--calls", str(args.calls),
               "--calls-100", str(args.calls_100)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise RuntimeError(f"the Feast run on {store} failed (exit {done.returncode}); output above")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def ensure_redis_extra(python: Path, version: str) -> None:
    """Feast's Redis store needs its ``redis`` extra, which _feast_env.py does not install."""
    if subprocess.run([str(python), "-c", "import redis"], capture_output=True).returncode == 0:
        return
    print(f"  adding feast[redis]=={version} to {python.parent.parent}", file=sys.stderr, flush=True)
    done = subprocess.run([str(python), "-m", "pip", "install", f"feast[redis]=={version}"],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise RuntimeError("pip install feast[redis] failed; output above")


# ---- Strato --------------------------------------------------------------------------------------------------


def run_strato(store: str, table: Any, parquet: Path, args: argparse.Namespace, now: float,
               work: Path) -> dict[str, Any]:  # fmt: skip
    from datetime import UTC, datetime, timedelta

    import httpx

    from strato.client import Client
    from strato.config import load_settings
    from strato.server import daemon
    from strato.specs.features import Entity, FeatureService, FeatureView

    prefix = f"bench{uuid.uuid4().hex[:10]}"
    url = f"redis://{REDIS}/0?prefix={prefix}" if store == "redis" else None
    settings = load_settings(home=work / f"home-{store}", environ={}, port=0, tracking=False, online_store_url=url)
    info = daemon.start(settings)
    token = settings.token_path.read_text().strip()
    client = Client(info.url, token)
    out: dict[str, Any] = {"results": {}, "check": {}}
    try:
        client.features.lake().create(VIEW, table)
        client.features.apply(
            Entity(name="driver", join_keys=[KEY]),
            FeatureView(name=VIEW, entities=["driver"], source=f"lake://{VIEW}", ttl=f"{TTL_DAYS}d",
                        features={f: "float64" for f in FEATURES}),
            FeatureService(name=SERVICE, features=[f"{VIEW}:*"]),
        )  # fmt: skip
        started = time.perf_counter()
        end = datetime.fromtimestamp(now, UTC) + timedelta(minutes=1)
        done = client.features.materialize(None, end.isoformat())
        out["materialize_s"] = time.perf_counter() - started
        if sum(v["rows"] for v in done) != ENTITIES:
            raise RuntimeError(f"materialize wrote {done}, expected {ENTITIES} rows")
        expected = expected_rows(parquet, CHECK_IDS)

        def sdk(ids: list[int]) -> dict[str, Any]:
            return client.features.get_online_features({KEY: ids}, SERVICE)

        http = httpx.Client(base_url=info.url, headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/json"})  # fmt: skip

        def rest(ids: list[int]) -> dict[str, Any]:
            body = json.dumps({"feature_service": SERVICE, "entities": {KEY: ids}})
            response = http.post("/api/v1/features/online", content=body)
            response.raise_for_status()
            return dict(response.json())

        try:
            for path, call in (("sdk", sdk), ("rest", rest)):
                out["check"][path] = check_answer(call(CHECK_IDS), CHECK_IDS, expected)
                for size, calls in ((1, args.calls), (100, args.calls_100)):
                    batches = id_batches(args.seed, size, calls + WARMUP)
                    out["results"][f"{path}/{size}"] = time_calls(call, batches, WARMUP)
                    r = out["results"][f"{path}/{size}"]
                    print(f"  strato {store:>6} {path:>4} {size:>3} entities: p50 {r['p50_ms']:.3f} ms, "
                          f"p99 {r['p99_ms']:.3f} ms", flush=True)  # fmt: skip
            if store == args.stores[0]:  # where REST time goes: the web stack without the feature read
                for name, path in (("floor_asgi", "/v2/health/live"), ("floor_fastapi", "/healthz")):
                    out[name] = time_calls(lambda _ids, p=path: http.get(p).raise_for_status(),
                                           [[]] * (args.calls + WARMUP), WARMUP)  # fmt: skip
            if args.profile:
                profile(store, sdk, id_batches(args.seed + 1, 1, args.calls))
        finally:
            http.close()
    finally:
        try:
            client.close()
            daemon.stop(settings)
        finally:
            if store == "redis":
                delete_redis_prefix(prefix)
    return out


def delete_redis_prefix(prefix: str) -> None:
    """SCAN + DEL of this run's keys in the shared Redis."""
    import redis

    db = redis.Redis.from_url(f"redis://{REDIS}/0")
    keys = list(db.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        db.delete(*keys[i : i + 1000])
    left = sum(1 for _ in db.scan_iter(match=f"{prefix}:*", count=1000))
    db.close()
    print(f"  redis: deleted {len(keys)} keys under {prefix}:*, {left} left", flush=True)


def profile(store: str, call: Any, batches: list[list[int]]) -> None:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for ids in batches:
        call(ids)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\ncProfile of {len(batches)} in-process 1-entity reads ({store}), by own time:")
    print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:6000], flush=True)


# ---- report ------------------------------------------------------------------------------------------------


def report(
    started: str, rows: list[dict[str, Any]], feast_version: str | None, floors: dict[str, dict[str, float]]
) -> bool:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")  # fmt: skip
    print(f"\nRun {started}; {os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.1f}; Feast {feast_version or 'skipped'}\n")  # fmt: skip
    print("| store | path | entities | calls | p50 ms | p99 ms | Feast/Strato p50 | Feast/Strato p99 | goal | result |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    met = True
    by = {(r["store"], r["path"], r["entities"]): r for r in rows}
    for r in rows:
        feast = by.get((r["store"], "feast", r["entities"]))
        ratio50 = ratio99 = "-"
        if feast and r["path"] != "feast":
            ratio50 = f"{feast['p50_ms'] / r['p50_ms']:.1f}x"
            ratio99 = f"{feast['p99_ms'] / r['p99_ms']:.1f}x"
        goals: list[tuple[str, bool]] = []
        limit = GOALS.get(f"{r['path']}_p99_ms_{r['entities']}")
        if limit is not None:
            goals.append((f"p99 < {limit:g} ms", r["p99_ms"] < limit))
        if r["path"] == "sdk" and feast:
            goals.append((f">= {GOALS['vs_feast']:g}x Feast p99", feast["p99_ms"] / r["p99_ms"] >= GOALS["vs_feast"]))
        goal = "; ".join(g for g, _ in goals) or "-"
        result = "; ".join("PASS" if ok else "FAIL" for _, ok in goals) or "-"
        met = met and all(ok for _, ok in goals)
        print(f"| {r['store']} | {r['path']} | {r['entities']} | {r['calls']} | {r['p50_ms']:.3f} | "
              f"{r['p99_ms']:.3f} | {ratio50} | {ratio99} | {goal} | {result} |")  # fmt: skip
    labels = {
        "floor_asgi": "GET /v2/health/live (uvicorn + HTTP, answered before FastAPI)",
        "floor_fastapi": "GET /healthz (+ FastAPI routing, middleware, a worker thread; no auth, no body)",
    }
    print()
    for key, label in labels.items():
        if key in floors:
            print(f"REST floor, {label}: p50 {floors[key]['p50_ms']:.3f} ms, p99 {floors[key]['p99_ms']:.3f} ms")
    print(f"\nLimits: a SQLite primary-key read of a 50-float row ~0.017 ms, a loopback HTTP round trip ~0.09 ms. "
          f"Goals {'all met' if met else 'NOT all met'}.")  # fmt: skip
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sqlite,redis", help="comma-separated: sqlite, redis")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls of 1 entity")
    parser.add_argument("--calls-100", type=int, default=500, help="timed calls of 100 entities")
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process 1-entity read")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--feast-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feast_child:
        feast_child(args)
        return 0
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(args.stores) - {"sqlite", "redis"}
    if unknown:
        parser.error(f"unknown store {sorted(unknown)[0]!r} (known: sqlite, redis)")

    import shutil

    import pyarrow.parquet as pq

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="strato-bench-features-online-"))
    now = time.time()
    table = make_table(args.seed, now)
    parquet = work / f"{VIEW}.parquet"
    pq.write_table(table, parquet)
    rows: list[dict[str, Any]] = []
    wrong: list[str] = []
    feast_version = None
    floors: dict[str, dict[str, float]] = {}
    try:
        for store in args.stores:
            strato = run_strato(store, table, parquet, args, now, work)
            print(f"  strato {store}: materialized in {strato['materialize_s']:.1f}s", flush=True)
            wrong += [f"strato {store} {p}: {why}" for p, why in strato["check"].items() if why]
            floors.update({k: strato[k] for k in ("floor_asgi", "floor_fastapi") if k in strato})
            for name, r in strato["results"].items():
                path, size = name.split("/")
                rows.append({"store": store, "path": path, "entities": int(size), **r})
            if not args.skip_feast:
                feast = run_feast(store, parquet, args, now)
                feast_version = feast["feast"]
                print(f"  feast {store}: materialized in {feast['materialize_s']:.1f}s; "
                      + ", ".join(f"{n} entities p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms"
                                  for n, r in feast["results"].items()), flush=True)  # fmt: skip
                if feast["check"]:
                    print(f"  feast {store} answer differs from the data: {feast['check']}", flush=True)
                for size, r in feast["results"].items():
                    rows.append({"store": store, "path": "feast", "entities": int(size), **r})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    order = {"sdk": 0, "rest": 1, "feast": 2}
    rows.sort(key=lambda r: (args.stores.index(r["store"]), r["entities"], order[r["path"]]))
    report(started, rows, feast_version, floors)
    for line in wrong:
        print(f"WRONG VALUES: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
