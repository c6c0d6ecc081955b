"""A slow, obviously correct point-in-time join in plain Python loops, to check the DuckDB engine against.

For each entity row and view it scans every source row. It returns, per row and view, the set of feature
tuples the engine may answer: one tuple, except when several rows tie on (event time, created time), where
any of them is acceptable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from strato.features.offline import ViewSource

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(value: Any) -> int | None:
    """A datetime (naive = UTC, aware in any zone) or pandas Timestamp as microseconds since the epoch."""
    if value is None or value != value:  # None, NaT
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def entity_records(entity_rows: Any) -> list[dict[str, Any]]:
    if isinstance(entity_rows, pa.Table):
        return entity_rows.to_pylist()
    return [dict(zip(entity_rows.columns, row, strict=True)) for row in entity_rows.itertuples(index=False)]


def acceptable(entity_rows: Any, views: list[ViewSource], timestamp_column: str = "event_timestamp") -> list[list[set]]:
    """answer[i][v]: the feature tuples view v may give entity row i."""
    answers: list[list[set]] = []
    tables = [view.source if isinstance(view.source, pa.Table) else view.source.to_table() for view in views]
    sources = [table.to_pylist() for table in tables]
    for entity in entity_records(entity_rows):
        at = micros(entity[timestamp_column])
        row_answer = []
        for view, rows in zip(views, sources, strict=True):
            best_key: tuple[int, float] | None = None
            best: set = set()
            for row in rows:
                event = micros(row[view.timestamp_field])
                if at is None or event is None or event > at:
                    continue
                if view.ttl is not None and event < at - round(view.ttl * 1_000_000):
                    continue
                if any(entity[k] is None or entity[k] != row[k] for k in view.join_keys):
                    continue
                created = micros(row[view.created_timestamp_field]) if view.created_timestamp_field else None
                key = (event, float("-inf") if created is None else created)
                values = tuple(row[f] for f in view.features)
                if best_key is None or key > best_key:
                    best_key, best = key, {values}
                elif key == best_key:
                    best.add(values)
            row_answer.append(best or {tuple(None for _ in view.features)})
        answers.append(row_answer)
    return answers
