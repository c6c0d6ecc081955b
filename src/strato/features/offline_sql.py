"""DuckDB plumbing of the offline engine: one fresh in-memory connection per call (all cores, a memory
limit and a temporary directory to spill to) and the small SQL pieces the queries are built from.

Times are compared as integer microseconds since the epoch (``epoch_us``), which is exact for every
timestamp unit and zone and does not depend on the session's time zone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

TWO_64 = 18446744073709551616  # 2**64: (event, created) packed in one HUGEINT, event in the high half
HALF_64 = 9223372036854775808  # 2**63: shifts a signed created time into the unsigned low half


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def connect(memory_limit: str | None = None, temp_dir: str | None = None) -> Iterator[Any]:
    """A fresh in-memory DuckDB connection; closed (and its spill directory removed) on exit."""
    import duckdb

    with ExitStack() as stack:
        if temp_dir is None:
            temp_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="strato-duckdb-"))
        config: dict[str, Any] = {
            "threads": os.cpu_count() or 1,
            "temp_directory": temp_dir,
            # Every query says the order it needs; without this DuckDB may stream and spill more freely.
            "preserve_insertion_order": False,
        }
        config["memory_limit"] = memory_limit or default_memory_limit()
        con = duckdb.connect(":memory:", config=config)
        stack.callback(con.close)
        yield con


def default_memory_limit() -> str:
    """Half the memory available now (DuckDB's own default, 80% of all memory, ignores other processes);
    past it DuckDB spills to its temporary directory. Arrow's scan buffers come on top (~0.5 GB)."""
    import psutil

    return f"{max(1024, psutil.virtual_memory().available // 2**21)}MB"


def epoch_us(column: str) -> str:
    """A source time column (timestamp of any unit or zone, or date) as microseconds since the epoch."""
    return f"epoch_us({quote(column)})"


def packed(event_us: str, created_us: str | None) -> str:
    """(event, created) as one sortable HUGEINT: equal events order by created, a null created lowest.
    Entity rows pass created=None and get the largest low half, so every created time at their event
    time still qualifies."""
    high = f"CAST({event_us} AS HUGEINT) * {TWO_64}"
    if created_us is None:
        return f"({high} + {TWO_64 - 1})"
    return f"({high} + COALESCE(CAST({created_us} AS HUGEINT) + {HALF_64}, 0))"


def sql_time(value: datetime) -> int:
    """An aware or naive (= UTC) datetime as microseconds since the epoch."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
