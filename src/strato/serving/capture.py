"""Data capture for model endpoints (SageMaker Model Monitor's "data capture"): a sample of the requests an
endpoint serves, with their responses, latency and status, appended to a Delta table partitioned by date, for
drift monitoring, debugging and building training sets from live traffic.

Why writing is off the request path: a Delta append writes a Parquet file and commits a JSON log entry (a
filesystem or object-store round trip of milliseconds to seconds), and one commit per request would also make
a table of millions of tiny files. So the request path only calls :meth:`CaptureWriter.offer`, which samples
(``rng.random() * 100 < sample_percent``) and appends the record to an in-memory list under a lock that is
only ever held for a few bytecodes (the writer swaps the whole list out in O(1)); it never does I/O, never
blocks on a write and never raises. A daemon thread turns what is queued into one Arrow table and makes one
Delta append (one commit) every ``flush_interval`` seconds, or sooner once ``flush_rows`` records are queued.

Failures, none of which ever reaches the request path or stops the writer thread:

- Queue full (``max_queue`` records waiting, e.g. because writes are failing or slow): the new record is
  dropped and counted in ``stats["dropped"]``; memory stays bounded.
- A write fails (table directory not writable, object store down, ...): counted in ``write_errors``, the
  message kept in ``last_error``, and the batch kept; it is retried with the next flush (together with the
  rows queued since, still one commit), up to ``max_retries`` (3) times, i.e. at most 4 attempts; then it is
  dropped and its rows counted in ``abandoned``. A failed write may leave an uncommitted Parquet file in the
  table directory, invisible to readers, which ``DeltaTable.vacuum()`` removes. If a commit succeeded but the
  call still reported an error, the retry writes the rows again: ``inference_id`` identifies duplicates.
- A malformed record (wrong field types, a status outside int32, a timestamp that is not a finite time
  before year 10000) is skipped at flush time and counted in ``invalid`` rather than poisoning its batch.
- ``close()`` stops the thread and flushes what is left (one last attempt for a failing batch); records
  offered after ``close()`` are refused. A process that exits without ``close()`` loses what is queued.

Table columns: endpoint, variant, model_version (nullable), at (timestamp[us, UTC]), date (``YYYY-MM-DD`` of
``at`` in UTC, the partition column), latency_ms (double), status (int32), request and response (the raw
bodies decoded as UTF-8 with ``errors="replace"``), request_content_type (nullable), inference_id.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

log = logging.getLogger("strato.serving")

__all__ = ["CAPTURE_SCHEMA", "CaptureRecord", "CaptureWriter"]

PARTITION_BY = ["date"]

CAPTURE_SCHEMA = pa.schema(
    [
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=True),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("status", pa.int32(), nullable=False),
        pa.field("request", pa.string(), nullable=False),
        pa.field("request_content_type", pa.string(), nullable=True),
        pa.field("response", pa.string(), nullable=False),
        pa.field("inference_id", pa.string(), nullable=False),
    ]
)

_MAX_AT = 253402300800.0  # 10000-01-01T00:00:00Z: the date column only has four digits for the year
_INT32 = 2**31


def _new_inference_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One served request, as the request path hands it over (raw bodies, no decoding or copying)."""

    endpoint: str
    variant: str
    model_version: str | None
    at: float  # unix seconds when the request arrived
    latency_ms: float
    status: int
    request: bytes  # the raw body
    request_content_type: str | None
    response: bytes
    inference_id: str = ""  # uuid4 hex; given at flush time when empty (a uuid costs a syscall per request)


def _text(body: Any) -> str:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body
    raise TypeError(f"a body must be bytes, not {type(body).__name__}")


def _required_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _required_str(value)


def _row(r: CaptureRecord) -> tuple[Any, ...]:
    """The record's values in CAPTURE_SCHEMA order except ``date``; raises on a malformed record."""
    at = float(r.at)
    if not 0.0 <= at < _MAX_AT:  # also rejects NaN
        raise ValueError(f"at={r.at!r} is not a unix time before year 10000")
    status = int(r.status)
    if not -_INT32 <= status < _INT32:
        raise ValueError(f"status={r.status!r} does not fit int32")
    return (
        _required_str(r.endpoint),
        _required_str(r.variant),
        _optional_str(r.model_version),
        round(at * 1_000_000),
        float(r.latency_ms),
        status,
        _text(r.request),
        _optional_str(r.request_content_type),
        _text(r.response),
        _required_str(r.inference_id) if r.inference_id else _new_inference_id(),
    )


def records_to_table(records: Sequence[CaptureRecord]) -> tuple[pa.Table, int]:
    """``(table in CAPTURE_SCHEMA, number of malformed records skipped)``."""
    rows: list[tuple[Any, ...]] = []
    invalid = 0
    for r in records:
        try:
            rows.append(_row(r))
        except Exception:
            invalid += 1
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 10
    (endpoint, variant, model_version, at_us, latency_ms, status, request, content_type, response, ids) = cols
    at = pa.array(at_us, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    date = at.cast(pa.date32()).cast(pa.string())  # the UTC calendar day: the zone of ``at`` is UTC
    arrays = [
        pa.array(endpoint, type=pa.string()),
        pa.array(variant, type=pa.string()),
        pa.array(model_version, type=pa.string()),
        at,
        date,
        pa.array(latency_ms, type=pa.float64()),
        pa.array(status, type=pa.int32()),
        pa.array(request, type=pa.string()),
        pa.array(content_type, type=pa.string()),
        pa.array(response, type=pa.string()),
        pa.array(ids, type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=CAPTURE_SCHEMA), invalid


@dataclass
class _Batch:
    table: pa.Table
    failures: int = 0


class CaptureWriter:
    """Samples records on the request path and appends them to a Delta table from a background thread.

    ``offer`` may be called from any thread (typically the asyncio event loop's); ``flush`` from any thread
    too (the writer thread, tests, ``close``): flushes are serialized, one Delta commit each.
    """

    max_retries = 3  # a failed batch is retried with this many later flushes, then dropped

    def __init__(
        self,
        table_uri: str,
        *,
        sample_percent: float = 100.0,
        flush_rows: int = 1000,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        if not 0.0 <= sample_percent <= 100.0:
            raise ValueError(f"sample_percent must be within [0, 100], got {sample_percent}")
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be at least 1, got {flush_rows}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.table_uri = str(table_uri)
        self.sample_percent = float(sample_percent)
        self.flush_rows = flush_rows
        self.flush_interval = float(flush_interval)
        self.max_queue = max_queue
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock  # stamps last_flush_at / last_error_at in stats
        self._storage_options = storage_options

        # Request-path state, guarded by _lock (held for a few bytecodes at a time, never across I/O).
        self._lock = threading.Lock()
        self._queue: list[CaptureRecord] = []
        self._offered = 0
        self._captured = 0
        self._dropped = 0
        self._closed = False

        # Writer state, guarded by _write_lock (held across a write; the request path never takes it).
        self._write_lock = threading.Lock()
        self._pending: list[_Batch] = []  # failed batches waiting for a retry
        self._written = 0
        self._commits = 0
        self._write_errors = 0
        self._abandoned = 0
        self._invalid = 0
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._last_flush_at: float | None = None

        self._wake = threading.Event()  # set by offer when flush_rows are queued, and by close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- request path -------------------------------------------------------------------------------------

    def offer(self, record: CaptureRecord) -> bool:
        """Sample and enqueue ``record``; True when it was kept. O(1), no I/O, never raises."""
        try:
            keep = self._rng.random() * 100.0 < self.sample_percent
            with self._lock:
                self._offered += 1
                if not keep or self._closed:
                    return False
                queue = self._queue
                if len(queue) >= self.max_queue:
                    self._dropped += 1
                    return False
                queue.append(record)
                self._captured += 1
                queued = len(queue)
            if queued >= self.flush_rows and not self._wake.is_set():
                self._wake.set()
            return True
        except Exception:  # a broken rng, say: capture must never fail a request
            return False

    # -- writer -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the daemon writer thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="strato-capture-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break  # close() does the last flush
            try:
                self.flush()
            except Exception:  # flush does not raise; this only keeps the thread alive if that ever changes
                log.exception("data capture: unexpected error in the writer thread")

    def flush(self) -> int:
        """Write what is queued now (plus any batch awaiting a retry) as one Delta append; rows written.

        Never raises: a failure is counted in ``stats`` and the batch kept for the next flush.
        """
        with self._write_lock:
            with self._lock:
                records, self._queue = self._queue, []
            try:
                return self._write(records)
            except Exception as exc:  # not a write error (those are handled in _write): a bug; lose the batch
                self._abandoned += len(records)
                self._note_error(exc)
                log.exception("data capture: could not build a batch of %d records", len(records))
                return 0

    def _write(self, records: list[CaptureRecord]) -> int:
        if records:
            table, invalid = records_to_table(records)
            self._invalid += invalid
            if invalid:
                log.warning("data capture: skipped %d malformed records", invalid)
            if table.num_rows:
                self._pending.append(_Batch(table))
        if not self._pending:
            return 0
        tables = [b.table for b in self._pending]
        data = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        try:
            from deltalake import write_deltalake

            write_deltalake(
                self.table_uri,
                data,
                mode="append",
                partition_by=PARTITION_BY,
                storage_options=self._storage_options,
            )
        except Exception as exc:
            self._write_errors += 1
            self._note_error(exc)
            kept: list[_Batch] = []
            for batch in self._pending:
                batch.failures += 1
                if batch.failures > self.max_retries:
                    self._abandoned += batch.table.num_rows
                else:
                    kept.append(batch)
            self._pending = kept
            log.warning(
                "data capture: writing %d rows to %s failed (%s); %d rows kept for retry",
                data.num_rows,
                self.table_uri,
                self._last_error,
                sum(b.table.num_rows for b in kept),
            )
            return 0
        self._pending = []
        self._written += data.num_rows
        self._commits += 1
        self._last_flush_at = self._clock()
        return int(data.num_rows)

    def _note_error(self, exc: BaseException) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._last_error_at = self._clock()

    def close(self) -> None:
        """Refuse further records, stop the thread and flush the rest (idempotent)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()
        if self._pending:  # the last attempt failed: nothing will retry it
            with self._write_lock:
                self._abandoned += sum(b.table.num_rows for b in self._pending)
                self._pending = []

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``offered`` (calls to offer), ``captured`` (kept by sampling and queued), ``dropped``
        (queue full), ``written`` (rows committed), ``commits``, ``write_errors`` (failed write attempts),
        ``last_error``, ``abandoned`` (rows given up after the retries), ``invalid`` (malformed records),
        ``queued`` (waiting for a flush), ``pending`` (rows of failed batches awaiting a retry)."""
        with self._lock:
            offered, captured, dropped, queued = self._offered, self._captured, self._dropped, len(self._queue)
        return {
            "offered": offered,
            "captured": captured,
            "dropped": dropped,
            "written": self._written,
            "commits": self._commits,
            "write_errors": self._write_errors,
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
            "last_flush_at": self._last_flush_at,
            "abandoned": self._abandoned,
            "invalid": self._invalid,
            "queued": queued,
            "pending": sum(b.table.num_rows for b in self._pending),
        }
