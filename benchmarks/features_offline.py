#!/usr/bin/env python
"""Offline feature retrieval: Strato against Feast and a hand-written DuckDB ASOF query.

Claim (issue: feature store): a point-in-time join of 3 feature views onto an entity dataframe takes at
most 1.5x the time and 1.5x the peak memory of a hand-written DuckDB ASOF query over the same data (the
limit), at every size; every entity row comes back (a LEFT join: rows with no value inside a view's TTL get
nulls) with the hand-written query's values; the 14M-row case stays under 4 GB.

One run, one machine, side by side, on generated data (benchmarks/_features_data.py, cached under
benchmarks/.data/features/):

* **Sizes.** ``small``: 200k entities x 10 events (2M rows of ``driver_hourly``, 10 float features) plus
  ``driver_stats`` (1M rows, 4 features) and ``driver_profile`` (200k rows, 3 features); ``large``: 1M
  entities x 14 days (14M + 7M + 1M rows). TTLs 2 days, 7 days and none. Entity dataframes of 1k, 200k
  and 1M rows, times from a day before the data to two days after it, 2% unknown ids.
* **Hand-written (the limit).** One DuckDB query: the entity rows (an Arrow table with a row number) ASOF
  LEFT JOIN ``read_parquet`` of each view on the key and time, a ``CASE`` that nulls a value older than
  the TTL, ``ORDER BY`` the row number; DuckDB's defaults (all cores, 80% of memory).
* **Strato.** ``strato.features.offline.get_historical_features`` with a ``ViewSource`` per view over the
  Delta tables of the same rows, default settings.
* **Feast** (``pip install feast``, in its own virtualenv benchmarks/.feast-venv, see _feast_env.py): a
  feature repo in a temporary folder (local provider, ``file`` offline store, ``FileSource`` over the
  Parquet files, an entity, 3 ``FeatureView`` with the same TTLs), ``get_historical_features(...).to_df()``.

Each run is a fresh process per contender, so its peak memory is its own: peak RSS of the whole process
(``ru_maxrss``: interpreter, imports and entity rows included; the libraries alone are 100-300 MB).
Time is the retrieval call only, from the entity rows in memory to the result in memory (an Arrow table,
a pandas frame for Feast): opening the sources and reading them is included; process start, imports,
loading the entity rows and Feast's ``apply`` are not. Median of ``--repeat`` runs, contenders interleaved.
Strato's result is compared cell by cell with the hand-written query's; Feast's rows are counted (its file
store reorders them).

    .venv/bin/python benchmarks/features_offline.py                      # everything: ~8 min on 2 cores
    .venv/bin/python benchmarks/features_offline.py --sizes small        # ~3.5 min
    .venv/bin/python benchmarks/features_offline.py --sizes small --skip-feast
    .venv/bin/python benchmarks/features_offline.py --sizes small --entity-rows 1000 --repeat 1

The first run also makes the Feast virtualenv (~20 s) and the data (~30 s, 2.3 GB under benchmarks/.data).
Exits 1 when Strato returns a wrong row count or wrong values; missed time or memory goals show as FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _features_data as data

GOAL_RATIO = 1.5
LARGE_LIMIT_MB = 4096
CONTENDERS = ("hand-written", "strato", "feast")


# ---- children: one retrieval in a fresh process, one JSON line on stdout ----------------------------------


def _peak_mb() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # kilobytes on Linux


def handwritten_sql(size: data.Size) -> str:
    """The limit: one query, ASOF LEFT JOIN per view, TTL as a CASE, rows in the entity order."""
    key, ts = data.KEY, data.TIMESTAMP
    selects = [f"e.{key}", f"e.{ts}"]
    joins = []
    for i, view in enumerate(data.VIEWS):
        alias = f"v{i}"
        source = str(data.parquet_path(size, view)).replace("'", "''")
        joins.append(f"ASOF LEFT JOIN read_parquet('{source}') {alias} "
                     f"ON e.{key} = {alias}.{key} AND e.{ts} >= {alias}.{ts}")  # fmt: skip
        for feature in view.features:
            if view.ttl is None:
                selects.append(f"{alias}.{feature}")
            else:
                fresh = f"{alias}.{ts} >= e.{ts} - INTERVAL {int(view.ttl)} SECOND"
                selects.append(f"CASE WHEN {fresh} THEN {alias}.{feature} END AS {feature}")
    return f"SELECT {', '.join(selects)} FROM entity_rows e {' '.join(joins)} ORDER BY e.__row"


def child_handwritten(size: data.Size, entities: Path) -> tuple[float, Any]:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pq.read_table(entities)
    rows = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entity_rows", rows)
    sql = handwritten_sql(size)
    started = time.perf_counter()
    result = con.sql(sql).to_arrow_table()
    return time.perf_counter() - started, result


def child_strato(size: data.Size, entities: Path) -> tuple[float, Any]:
    import pyarrow.parquet as pq

    from strato.features.offline import ViewSource, get_historical_features

    rows = pq.read_table(entities)
    views = [
        ViewSource(name=view.name, join_keys=(data.KEY,), timestamp_field=data.TIMESTAMP, features=view.features,
                   source=str(data.delta_path(size, view)), ttl=view.ttl)
        for view in data.VIEWS
    ]  # fmt: skip
    started = time.perf_counter()
    result = get_historical_features(rows, views, timestamp_column=data.TIMESTAMP)
    return time.perf_counter() - started, result


def child_feast(size: data.Size, entities: Path) -> tuple[float, Any]:
    import logging
    from datetime import timedelta

    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64, String

    logging.disable(logging.WARNING)
    repo = Path(tempfile.mkdtemp(prefix="strato-bench-feast-"))
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: registry.db\nprovider: local\n"
        "online_store:\n  type: sqlite\n  path: online.db\n"
        "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(repo))
    driver = Entity(name="driver", join_keys=[data.KEY], value_type=ValueType.INT64)
    types = {"float32": Float32, "int64": Int64, "string": String}
    views = [
        FeatureView(
            name=view.name, entities=[driver], ttl=timedelta(seconds=view.ttl or 0),  # 0: no limit
            schema=[Field(name=data.KEY, dtype=Int64)]
            + [Field(name=f, dtype=types[t]) for f, t in zip(view.features, view.types, strict=True)],
            source=FileSource(name=view.name, path=str(data.parquet_path(size, view)),
                              timestamp_field=data.TIMESTAMP),
        )
        for view in data.VIEWS
    ]  # fmt: skip
    store.apply([driver, *views])
    entity_df = pd.read_parquet(entities)
    features = [f"{view.name}:{f}" for view in data.VIEWS for f in view.features]
    started = time.perf_counter()
    result = store.get_historical_features(entity_df=entity_df, features=features).to_df()
    return time.perf_counter() - started, result


def child(contender: str, size_name: str, entity_rows: int, out: str | None) -> None:
    size = data.SIZES[size_name]
    entities = data.entities_path(size, entity_rows)
    run = {"hand-written": child_handwritten, "strato": child_strato, "feast": child_feast}[contender]
    seconds, result = run(size, entities)
    peak = _peak_mb()  # before writing the result out, which is not part of the work
    if out:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(result if isinstance(result, pa.Table) else pa.Table.from_pandas(result), out)
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "rows": len(result)}))


# ---- parent -----------------------------------------------------------------------------------------------


def run_child(python: Path, contender: str, size: data.Size, entity_rows: int, out: Path | None,
              max_mb: float, timeout: float) -> dict[str, Any]:  # fmt: skip
    """One contender once in a fresh process; killed when its memory passes max_mb (it would take the
    machine down) or it runs past timeout."""
    import psutil

    command = [str(python), "-W", "ignore", __file__, "--child", contender, "--sizes", size.name,
               "--entity-rows", str(entity_rows)] + (["--out", str(out)] if out else [])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["FEAST_USAGE"] = "False"
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        watched = psutil.Process(process.pid)
        started, seen_mb, why = time.monotonic(), 0.0, ""
        while process.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [watched, *watched.children(recursive=True)])
                seen_mb = max(seen_mb, rss / 2**20)
            except psutil.Error:
                pass
            if seen_mb > max_mb or time.monotonic() - started > timeout:
                why = f"killed at {seen_mb:,.0f} MB" if seen_mb > max_mb else f"timeout {timeout:.0f}s"
                process.kill()
                process.wait()
                break
            time.sleep(0.05)
        stdout.seek(0)
        stderr.seek(0)
        lines = stdout.read().strip().splitlines()
        if process.returncode == 0 and lines:
            return dict(json.loads(lines[-1]))
        tail = stderr.read().strip().splitlines()[-1:] or ["no output"]
        return {"error": why or f"exit {process.returncode}: {tail[0][:150]}", "peak_mb": seen_mb}


def compare(expected_path: Path, got_path: Path) -> tuple[int, str]:
    """Cells of Strato's result that differ from the hand-written query's (same row order, nulls equal)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    expected, got = pq.read_table(expected_path), pq.read_table(got_path)
    if got.column_names != expected.column_names:
        return expected.num_rows, f"columns {got.column_names} != {expected.column_names}"
    if got.num_rows != expected.num_rows:
        return expected.num_rows, f"{got.num_rows:,} rows, expected {expected.num_rows:,}"
    wrong = 0
    for name in expected.column_names:
        want, have = expected[name], got[name].cast(expected[name].type)
        same = pc.or_kleene(pc.fill_null(pc.equal(want, have), False), pc.and_(pc.is_null(want), pc.is_null(have)))
        wrong += expected.num_rows - pc.sum(pc.cast(same, "int64")).as_py()
    return wrong, "" if not wrong else f"{wrong:,} cells differ"


def null_summary(result_path: Path) -> str:
    """How many rows have no value of each view: shows the TTL and unknown ids are exercised."""
    import pyarrow.parquet as pq

    result = pq.read_table(result_path)
    parts = [f"{view.name} {result[view.features[0]].null_count:,}" for view in data.VIEWS]
    return "rows without a value: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,large", help="comma-separated: small (2M rows), large (14M)")
    parser.add_argument("--entity-rows", default="1000,200000,1000000", help="comma-separated entity row counts")
    parser.add_argument("--skip-feast", action="store_true", help="only Strato and the hand-written query")
    parser.add_argument("--repeat", type=int, help="runs per contender (default 3 for small, 1 for large)")
    parser.add_argument("--max-mb", type=float, default=10_000, help="kill a contender using more MB than this")
    parser.add_argument("--timeout", type=float, default=1800, help="kill a contender running longer (seconds)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [data.SIZES[name] for name in args.sizes.split(",") if name]
    entity_counts = [int(n) for n in args.entity_rows.split(",") if n]
    if args.child:
        child(args.child, sizes[0].name, entity_counts[0], args.out)
        return 0

    pythons = {"hand-written": Path(sys.executable), "strato": Path(sys.executable)}
    feast_version = ""
    if not args.skip_feast:
        from _feast_env import FEAST_VERSION, feast_python

        pythons["feast"], feast_version = feast_python(), FEAST_VERSION
    run_started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="strato-bench-features-"))
    cases: list[dict[str, Any]] = []
    try:
        for size in sizes:
            data.ensure_views(size)
            repeat = args.repeat or (3 if size.name == "small" else 1)
            for count in entity_counts:
                data.ensure_entities(size, count)
                cases.append(run_case(size, count, repeat, pythons, work, args.max_mb, args.timeout))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(cases, list(pythons), run_started, feast_version)


def run_case(size: data.Size, count: int, repeat: int, pythons: dict[str, Path], work: Path, max_mb: float,
             timeout: float) -> dict[str, Any]:  # fmt: skip
    """Every contender ``repeat`` times, interleaved; then Strato's first result against the hand-written one."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in pythons}
    outputs = {c: work / f"{size.name}-{count}-{c}.parquet" for c in ("hand-written", "strato")}
    for r in range(repeat):
        for contender, python in pythons.items():
            out = outputs.get(contender) if r == 0 else None
            result = run_child(python, contender, size, count, out, max_mb, timeout)
            runs[contender].append(result)
            shown = (
                result.get("error") or f"{result['seconds']:.2f}s, {result['peak_mb']:,.0f} MB, {result['rows']:,} rows"
            )
            print(f"{size.name} {count:>9,} entity rows, run {r + 1}/{repeat}: {contender:<12} {shown}", flush=True)
    case = {"size": size, "count": count, "runs": runs, "check": (-1, "no result to compare")}
    if outputs["hand-written"].exists():
        case["nulls"] = null_summary(outputs["hand-written"])
        if outputs["strato"].exists():
            case["check"] = compare(outputs["hand-written"], outputs["strato"])
    for path in outputs.values():
        path.unlink(missing_ok=True)
    return case


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [r for r in runs if "error" not in r]
    if not good:
        return None
    return {"seconds": statistics.median(r["seconds"] for r in good), "peak_mb": max(r["peak_mb"] for r in good),
            "rows": min(r["rows"] for r in good)}  # fmt: skip


def report(cases: list[dict[str, Any]], contenders: list[str], started: str, feast_version: str) -> int:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"\nRun {started}; {os.cpu_count()} cores, {cpu}, {memory:.0f} GiB, Python {sys.version.split()[0]}, "
        f"load {os.getloadavg()[0]:.1f}" + (f"; Feast {feast_version} (file offline store)" if feast_version else "")
    )
    print("Time: median of the retrieval call; memory: peak RSS of the contender's process.\n")
    print(
        "| size | entity rows | contender | median s | peak MB | rows returned | time / hand-written "
        "| memory / hand-written | goal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    wrong_values = False
    verdicts = {"time and memory within 1.5x": True, "every row, right values": True, "14M rows under 4 GB": True}
    for case in cases:
        size, count = case["size"], case["count"]
        limit = _summary(case["runs"]["hand-written"])
        for contender in contenders:
            summary = _summary(case["runs"][contender])
            label = f"| {size.name} ({size.rows / 1e6:.0f}M) | {count:,} | {contender} |"
            if summary is None:
                error = case["runs"][contender][0]["error"]
                print(f"{label} - | - | - | - | - | {error} |")
                if contender == "strato":
                    wrong_values = True
                    verdicts = dict.fromkeys(verdicts, False)
                continue
            rows = summary["rows"]
            rows_text = f"{rows:,}" if rows == count else f"{rows:,} of {count:,}"
            ratios = ("", "")
            if limit and contender != "hand-written":
                ratios = (f"{summary['seconds'] / limit['seconds']:.2f}",
                          f"{summary['peak_mb'] / limit['peak_mb']:.2f}")  # fmt: skip
            goal = ""
            if contender == "strato":
                misses = []
                if limit and (summary["seconds"] > GOAL_RATIO * limit["seconds"]
                              or summary["peak_mb"] > GOAL_RATIO * limit["peak_mb"]):  # fmt: skip
                    misses.append("over 1.5x")
                    verdicts["time and memory within 1.5x"] = False
                wrong, why = case["check"]
                if rows != count or wrong:
                    misses.append(why or f"{rows:,} rows")
                    verdicts["every row, right values"] = False
                    wrong_values = True
                if size.name == "large" and summary["peak_mb"] > LARGE_LIMIT_MB:
                    misses.append("over 4 GB")
                    verdicts["14M rows under 4 GB"] = False
                goal = "FAIL: " + "; ".join(misses) if misses else "PASS"
            elif contender == "feast" and rows != count:
                goal = f"drops {count - rows:,} rows"
            print(
                f"{label} {summary['seconds']:.2f} | {summary['peak_mb']:,.0f} | {rows_text} | {ratios[0]} | "
                f"{ratios[1]} | {goal} |"
            )
    print()
    for case in cases:
        if "nulls" in case:
            print(f"{case['size'].name}, {case['count']:,} entity rows, hand-written result: {case['nulls']}")
    print()
    if not any(c["size"].name == "large" for c in cases):
        verdicts.pop("14M rows under 4 GB")
    for goal, ok in verdicts.items():
        print(f"Goal: Strato {goal}: {'PASS' if ok else 'FAIL'}")
    return 1 if wrong_values else 0


if __name__ == "__main__":
    sys.exit(main())
