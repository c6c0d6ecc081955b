"""The metadata store (SQLAlchemy 2 + Alembic; SQLite by default, PostgreSQL by URL)."""

from strato.store.metadata.store import Event, MetadataStore, MetricPoint, ResourceRecord, Transition

__all__ = ["Event", "MetadataStore", "MetricPoint", "ResourceRecord", "Transition"]
