"""Storage: the metadata store (SQLAlchemy) and the artifact store (fsspec)."""
