"""The log of served feature vectors: for every request an endpoint answered with looked-up features, the
entity keys, the request time and the values served, appended in batches to one lake table
(``strato_feature_log``) off the request path. ``strato features skew`` joins it back to the offline
values the same entities had at the same times.

Columns: endpoint, service, request_time (timestamp[us, UTC]), then the request's columns and the served
features under their output names; a service that adds a feature adds a column (schema evolution).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from strato.lake.tables import LakeTables

log = logging.getLogger("strato.features")
TABLE = "strato_feature_log"


class FeatureLog:
    def __init__(
        self,
        lake: LakeTables,
        *,
        table: str = TABLE,
        flush_interval: float = 2.0,
        max_queue: int = 200_000,
        clock: Callable[[], float] = time.time,
    ):
        self.lake = lake
        self.table = table
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.clock = clock
        self._pending: list[pa.Table] = []
        self._queued = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def offer(
        self, endpoint: str, service: str, entities: dict[str, list[Any]], features: dict[str, list[Any]]
    ) -> None:
        """Queue one request's vectors (never blocks on I/O, never raises)."""
        try:
            n = len(next(iter(features.values()))) if features else 0
            columns: dict[str, Any] = {
                "endpoint": [endpoint] * n,
                "service": [service] * n,
                "request_time": pa.array([self.clock() * 1e6] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            }
            columns.update({k: v for k, v in entities.items() if k not in columns})
            columns.update({k: v for k, v in features.items() if k not in columns})
            batch = pa.table(columns)
        except Exception as exc:  # a request we cannot log is still served
            log.warning("feature log: cannot log a request of %s: %s", endpoint, exc)
            return
        with self._lock:
            if self._queued + n > self.max_queue:
                self.dropped += n
                return
            self._pending.append(batch)
            self._queued += n
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="feature-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> int:
        with self._write_lock:
            with self._lock:
                pending, self._pending, self._queued = self._pending, [], 0
            if not pending:
                return 0
            table = pa.concat_tables(pending, promote_options="permissive")
            try:
                if self.lake.exists(self.table):
                    self.lake.append(self.table, table, evolve=True)
                else:
                    self.lake.create(self.table, table)
            except Exception as exc:  # kept out of the request path; the rows are lost and counted
                log.warning("feature log: write failed: %s", exc)
                self.dropped += table.num_rows
                return 0
            return table.num_rows

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
