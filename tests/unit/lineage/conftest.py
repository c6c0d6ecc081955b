from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.lineage.graph import Lineage
from strato.store.metadata import MetadataStore
from tests.unit.lineage.world import record_pipeline, sqlite_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    s = sqlite_store(str(tmp_path / "meta.db"))
    yield s
    s.close()


@pytest.fixture
def lineage(store: MetadataStore) -> Lineage:
    return Lineage(store)


@pytest.fixture
def pipeline(lineage: Lineage) -> Lineage:
    """``lineage`` with the graph of ``world.py`` recorded."""
    record_pipeline(lineage)
    return lineage
