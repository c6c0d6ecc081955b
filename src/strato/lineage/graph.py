"""Recording lineage: nodes (a thing, by kind and a stable key) and edges (how one came from another).

The platform records as it works (a job's inputs and code when it is created, its MLflow run, the model
versions registered from it, the endpoints serving them); users never record by hand. Recording is
idempotent: the same node or edge recorded twice is stored once, and a node's attributes are merged.

Keys by kind (``lineage/kinds.py``): a dataset is ``<uri>@<fingerprint>`` (named by its URI), a code
snapshot its content hash, a job or tuning job its uid (named by its name), a run its MLflow run id, a
model version ``<model>/<version>``, an endpoint its uid.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from strato.lineage import kinds
from strato.lineage.fingerprint import dataset_key, fingerprint
from strato.lineage.model import LineageGraph, LineageNode
from strato.lineage.query import LineageQueries
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import lineage_edges, lineage_nodes

NodeRef = tuple[str, str]  # (kind, key)


class Lineage:
    def __init__(self, store: MetadataStore):
        self.store = store

    def node(self, kind: str, key: str, name: str | None = None, **attrs: Any) -> int:
        """Record a node (or merge ``attrs`` into the one recorded before); returns its id."""
        for _ in range(3):  # a racing insert of the same node loses the unique constraint: read it back
            with self.store.writing() as conn:
                row = conn.execute(
                    sa.select(lineage_nodes.c.id, lineage_nodes.c.attrs, lineage_nodes.c.name).where(
                        lineage_nodes.c.kind == kind, lineage_nodes.c.key == key
                    )
                ).first()
                if row is not None:
                    merged = {**(row.attrs or {}), **attrs}
                    new_name = name or row.name
                    if merged != row.attrs or new_name != row.name:
                        conn.execute(
                            lineage_nodes.update()
                            .where(lineage_nodes.c.id == row.id)
                            .values(attrs=merged, name=new_name)
                        )
                    return int(row.id)
                try:
                    result = conn.execute(
                        lineage_nodes.insert().values(
                            kind=kind, key=key, name=name or key, attrs=attrs, created_at=self.store.clock()
                        )
                    )
                    key_ = result.inserted_primary_key
                    assert key_ is not None
                    return int(key_[0])
                except IntegrityError:
                    continue
        raise RuntimeError(f"could not record lineage node {kind}:{key}")

    def link(self, src: NodeRef, dst: NodeRef, relation: str) -> None:
        """Record ``src --relation--> dst`` (nodes not recorded yet are recorded with their key as name)."""
        src_id, dst_id = self.node(*src), self.node(*dst)
        try:
            with self.store.writing() as conn:
                exists = conn.execute(
                    sa.select(lineage_edges.c.id).where(
                        lineage_edges.c.src == src_id,
                        lineage_edges.c.dst == dst_id,
                        lineage_edges.c.relation == relation,
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        lineage_edges.insert().values(src=src_id, dst=dst_id, relation=relation, at=self.store.clock())
                    )
        except IntegrityError:
            pass  # recorded by a racing call

    def dataset(
        self, uri: str, *, storage_options: dict[str, Any] | None = None, fp: str | None = None, **attrs: Any
    ) -> NodeRef:
        """Record the dataset at ``uri`` (fingerprinted now unless ``fp`` is given, see
        ``lineage/fingerprint.py``) named by its URI; returns its ``(kind, key)`` for ``link``."""
        fp = fp or fingerprint(uri, storage_options)
        key = dataset_key(uri, fp)
        self.node(kinds.DATASET, key, name=uri, fingerprint=fp, **attrs)
        return (kinds.DATASET, key)

    # Reading (lineage/query.py) --------------------------------------------------------------------
    def find(self, kind: str, name: str) -> tuple[LineageNode, list[str]]:
        """The node of ``kind`` keyed or (newest) named ``name``, with notes on how it was chosen."""
        return LineageQueries(self.store).find(kind, name)

    def graph(self, kind: str, name: str, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """What the node came from (``upstream``), what came from it (``downstream``), or both."""
        return LineageQueries(self.store).graph(kind, name, direction, depth)
