"""Data capture: real Delta tables under tmp_path, read back with deltalake. Background behaviour is awaited
with deadline loops on a condition, never with fixed sleeps. Write failures are caused by a regular file
standing where a parent directory of the table must go (this works as root too, unlike chmod)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from strato.serving.capture import CAPTURE_SCHEMA, CaptureRecord, CaptureWriter, records_to_table

GUARD = 30.0  # seconds before a stuck test fails instead of hanging; passing never comes near it


def wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def rec(i: int = 0, **kw: object) -> CaptureRecord:
    fields: dict[str, object] = dict(
        endpoint="churn",
        variant="blue",
        model_version="3",
        at=1_700_000_000.25 + i,
        latency_ms=1.5 + i,
        status=200,
        request=b'{"x": %d}' % i,
        request_content_type="application/json",
        response=b'{"y": %d}' % i,
        inference_id=f"{i:032x}",
    )
    fields.update(kw)
    return CaptureRecord(**fields)  # type: ignore[arg-type]


def read(uri: Path) -> list[dict[str, object]]:
    return sorted(DeltaTable(str(uri)).to_pyarrow_table().to_pylist(), key=lambda r: str(r["inference_id"]))


@pytest.fixture
def uri(tmp_path: Path) -> Path:
    return tmp_path / "capture"


def test_rows_types_and_date_partition(uri: Path) -> None:
    midnight = dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()
    records = [
        rec(0, at=midnight - 0.5, model_version=None, request_content_type=None),  # 2024-02-29, leap day
        rec(1, at=midnight + 0.000123, request=b"\xff\xfeok", response=b"caf\xc3\xa9", status=503),
    ]
    w = CaptureWriter(str(uri))
    assert all(w.offer(r) for r in records)
    assert w.flush() == 2

    table = DeltaTable(str(uri))
    assert table.metadata().partition_columns == ["date"]
    arrow = table.to_pyarrow_table()
    assert {f.name: f.type for f in arrow.schema} == {f.name: f.type for f in CAPTURE_SCHEMA}
    assert arrow.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert arrow.schema.field("status").type == pa.int32()
    assert sorted(p.name for p in uri.iterdir() if p.name.startswith("date=")) == [
        "date=2024-02-29",
        "date=2024-03-01",
    ]
    first, second = read(uri)
    assert first == {
        "endpoint": "churn",
        "variant": "blue",
        "model_version": None,
        "at": dt.datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=dt.UTC),
        "date": "2024-02-29",
        "latency_ms": 1.5,
        "status": 200,
        "request": '{"x": 0}',
        "request_content_type": None,
        "response": '{"y": 0}',
        "inference_id": f"{0:032x}",
    }
    assert second["at"] == dt.datetime(2024, 3, 1, 0, 0, 0, 123, tzinfo=dt.UTC)
    assert second["date"] == "2024-03-01"
    assert second["status"] == 503
    assert second["model_version"] == "3"
    assert second["request"] == "\ufffd\ufffdok"  # invalid UTF-8 replaced, not an error
    assert second["response"] == "café"
    assert w.stats["written"] == 2 and w.stats["commits"] == 1


def test_an_inference_id_left_empty_is_a_uuid4_given_at_flush() -> None:
    records = [CaptureRecord("e", "v", None, 0.0, 1.0, 200, b"", None, b"") for _ in range(2)]
    assert records[0].inference_id == ""  # nothing spent on the request path
    ids = records_to_table(records)[0].column("inference_id").to_pylist()
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids) and ids[0] != ids[1]


def test_one_commit_per_flush(uri: Path) -> None:
    w = CaptureWriter(str(uri))
    assert w.flush() == 0 and not uri.exists()  # nothing queued: no table, no commit
    for round_, n in enumerate([3, 1, 5]):
        for i in range(n):
            w.offer(rec(100 * round_ + i))
        assert w.flush() == n
        assert DeltaTable(str(uri)).version() == round_  # created at version 0, then +1 per flush
    assert w.flush() == 0
    assert DeltaTable(str(uri)).version() == 2
    assert len(read(uri)) == 9
    assert w.stats["commits"] == 3 and w.stats["written"] == 9


def test_sampling_follows_the_seeded_rng(uri: Path) -> None:
    seed, n, percent = 1234, 1000, 10.0
    twin = random.Random(seed)
    expected = [twin.random() * 100 < percent for _ in range(n)]
    w = CaptureWriter(str(uri), sample_percent=percent, rng=random.Random(seed))
    kept = [w.offer(rec(i)) for i in range(n)]
    assert kept == expected
    assert 50 < sum(expected) < 150  # sanity: about 10%
    assert w.flush() == sum(expected)
    assert [r["inference_id"] for r in read(uri)] == [f"{i:032x}" for i in range(n) if expected[i]]
    s = w.stats
    assert (s["offered"], s["captured"], s["dropped"]) == (n, sum(expected), 0)


def test_sample_percent_bounds(uri: Path) -> None:
    none = CaptureWriter(str(uri), sample_percent=0.0)
    assert not any(none.offer(rec(i)) for i in range(100))
    everything = CaptureWriter(str(uri), sample_percent=100.0)
    assert all(everything.offer(rec(i)) for i in range(100))
    with pytest.raises(ValueError):
        CaptureWriter(str(uri), sample_percent=101)


def test_full_queue_drops_and_counts(uri: Path) -> None:
    w = CaptureWriter(str(uri), max_queue=5)
    assert [w.offer(rec(i)) for i in range(8)] == [True] * 5 + [False] * 3
    s = w.stats
    assert (s["offered"], s["captured"], s["dropped"], s["queued"]) == (8, 5, 3, 5)
    assert w.flush() == 5
    assert [r["inference_id"] for r in read(uri)] == [f"{i:032x}" for i in range(5)]  # the first five kept
    assert w.offer(rec(8))  # room again after the flush
    assert w.stats["dropped"] == 3


def blocked(tmp_path: Path) -> tuple[Path, Path]:
    """(table uri, the file that blocks it): the table's parent path is a regular file, so writes fail."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    return blocker / "capture", blocker


def test_write_failure_is_counted_and_the_batch_retried(tmp_path: Path) -> None:
    uri, blocker = blocked(tmp_path)
    w = CaptureWriter(str(uri))
    for i in range(4):
        assert w.offer(rec(i))
    assert w.flush() == 0  # no exception
    s = w.stats
    assert s["write_errors"] == 1 and s["written"] == 0 and s["pending"] == 4
    assert s["last_error"] and "directory" in s["last_error"].lower()
    assert all(w.offer(rec(i)) for i in range(4, 6))  # the request path keeps working
    assert w.flush() == 0 and w.stats["write_errors"] == 2 and w.stats["pending"] == 6

    blocker.unlink()  # the cause is fixed
    assert w.flush() == 6  # the retried batch and the new rows, in one commit
    assert [r["inference_id"] for r in read(uri)] == [f"{i:032x}" for i in range(6)]
    assert DeltaTable(str(uri)).version() == 0
    s = w.stats
    assert (s["written"], s["commits"], s["pending"], s["abandoned"]) == (6, 1, 0, 0)


def test_a_failing_batch_is_dropped_after_three_retries(tmp_path: Path) -> None:
    uri, blocker = blocked(tmp_path)
    w = CaptureWriter(str(uri))
    for i in range(3):
        w.offer(rec(i))
    for attempt in range(1, 4):  # the first try and two retries fail: kept
        assert w.flush() == 0
        assert (w.stats["write_errors"], w.stats["pending"], w.stats["abandoned"]) == (attempt, 3, 0)
    w.offer(rec(3))
    assert w.flush() == 0  # third retry of the first batch fails: it is dropped; the new row stays
    assert (w.stats["write_errors"], w.stats["pending"], w.stats["abandoned"]) == (4, 1, 3)
    blocker.unlink()
    assert w.flush() == 1
    assert [r["inference_id"] for r in read(uri)] == [f"{3:032x}"]


def test_the_thread_survives_failures_and_recovers(tmp_path: Path) -> None:
    uri, blocker = blocked(tmp_path)
    w = CaptureWriter(str(uri), flush_interval=0.02)
    w.start()
    try:
        for i in range(5):
            w.offer(rec(i))
        wait_for(lambda: w.stats["write_errors"] >= 1, "a failed write")
        assert w._thread is not None and w._thread.is_alive()
        blocker.unlink()
        wait_for(lambda: w.stats["written"] == 5, "the retried batch")
        assert w._thread.is_alive()
    finally:
        w.close()
    assert len(read(uri)) == 5


def test_background_thread_flushes_by_size_and_close_flushes_the_rest(uri: Path) -> None:
    w = CaptureWriter(str(uri), flush_rows=50, flush_interval=3600.0)  # the timer never fires in this test
    w.start()
    try:
        for i in range(49):
            w.offer(rec(i))
        assert w.stats["written"] == 0
        w.offer(rec(49))
        wait_for(lambda: w.stats["written"] == 50, "the size-triggered flush")
        assert w.stats["commits"] == 1
        for i in range(50, 57):
            w.offer(rec(i))
    finally:
        w.close()
    assert w._thread is not None and not w._thread.is_alive()
    s = w.stats
    assert (s["written"], s["commits"], s["queued"]) == (57, 2, 0)
    assert len(read(uri)) == 57
    assert not w.offer(rec(57))  # refused after close
    w.close()  # idempotent


def test_background_thread_flushes_on_the_interval(uri: Path) -> None:
    w = CaptureWriter(str(uri), flush_rows=1000, flush_interval=0.02)
    w.start()
    try:
        w.offer(rec(0))
        wait_for(lambda: w.stats["written"] == 1, "the timed flush")
    finally:
        w.close()


def test_concurrent_offers_while_the_writer_runs(uri: Path) -> None:
    w = CaptureWriter(str(uri), flush_rows=100, flush_interval=0.01)
    w.start()

    def produce(base: int) -> None:
        for i in range(500):
            w.offer(rec(base + i))

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    s = w.stats
    assert s["captured"] == s["written"] == 2000 and s["dropped"] == 0
    ids = [r["inference_id"] for r in read(uri)]
    assert len(ids) == len(set(ids)) == 2000


def test_offer_never_raises_and_bad_records_do_not_poison_a_batch(uri: Path) -> None:
    class Broken(random.Random):
        def random(self) -> float:
            raise RuntimeError("boom")

    assert CaptureWriter(str(uri), rng=Broken()).offer(rec(0)) is False

    w = CaptureWriter(str(uri))
    w.offer(rec(0))
    w.offer(rec(1, status=2**40))
    w.offer(rec(2, at=float("nan")))
    w.offer(rec(3, request="already text"))
    w.offer(rec(4, endpoint=None))
    assert w.flush() == 2
    assert [r["inference_id"] for r in read(uri)] == [f"{0:032x}", f"{3:032x}"]
    assert w.stats["invalid"] == 3


def test_offer_cost_and_flush_throughput(uri: Path) -> None:
    """Measured, printed, not asserted (run with -s to see)."""
    record = rec(0)
    n = 200_000
    kept = CaptureWriter(str(uri), max_queue=n + 1)
    per_call = timeit.timeit(lambda: kept.offer(record), number=n) / n
    sampled = CaptureWriter(str(uri), sample_percent=10.0, rng=random.Random(0))
    per_call_sampled = timeit.timeit(lambda: sampled.offer(record), number=n) / n

    w = CaptureWriter(str(uri))
    for i in range(10_000):
        w.offer(rec(i, request=b'{"inputs": [[%d, 2.5, 3.5, 4.5]]}' % i, response=b'{"outputs": [0.73]}'))
    start = time.perf_counter()
    assert w.flush() == 10_000
    seconds = time.perf_counter() - start
    print(
        f"\noffer(): {per_call * 1e6:.2f} us/call kept, {per_call_sampled * 1e6:.2f} us/call at 10% sampling;"
        f" 10k-row flush: {seconds * 1e3:.1f} ms = {10_000 / seconds:,.0f} rows/s"
    )
