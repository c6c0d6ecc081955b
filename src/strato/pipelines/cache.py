"""The step cache: content hash -> outputs and metrics of the run that produced them.

Closes the holes the issue names: a hit is used only if every output still exists in the artifact store
(KFP does not check) and the entry is younger than the step's ``expire_after`` (KFP never expires);
keys are content hashes of what a step does, so re-applying a pipeline without changing a step keeps its
hits (SageMaker's cache misses after every upsert). A miss says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import pipeline_cache


@dataclass
class CacheEntry:
    key: str
    pipeline: str
    step: str
    outputs: dict[str, str]
    metrics: dict[str, float]
    job: str
    run: str
    created_at: float


@dataclass
class Lookup:
    entry: CacheEntry | None
    reason: str  # why it hit or missed, shown on the step


class StepCache:
    def __init__(self, store: MetadataStore, exists: Callable[[str], bool], clock: Callable[[], float]):
        self.store = store
        self.exists = exists  # does this output (a store:// path) still exist
        self.clock = clock

    def lookup(self, key: str, expire_after: float | None) -> Lookup:
        with self.store.reading() as conn:
            row = conn.execute(sa.select(pipeline_cache).where(pipeline_cache.c.key == key)).first()
        if row is None:
            return Lookup(None, "no earlier run of this exact step (definition, code, parameters and inputs)")
        entry = CacheEntry(**row._mapping)
        age = self.clock() - entry.created_at
        if expire_after is not None and age > expire_after:
            return Lookup(None, f"the cached result of run {entry.run!r} expired ({age / 3600:.1f} h old)")
        missing = [name for name, uri in entry.outputs.items() if not self.exists(uri)]
        if missing:
            return Lookup(None, f"cached output {missing[0]!r} of run {entry.run!r} no longer exists")
        return Lookup(entry, f"reused the result of run {entry.run!r} (job {entry.job})")

    def put(self, entry: CacheEntry) -> None:
        values: dict[str, Any] = dict(entry.__dict__)
        with self.store.writing() as conn:
            conn.execute(pipeline_cache.delete().where(pipeline_cache.c.key == entry.key))
            conn.execute(pipeline_cache.insert().values(**values))
