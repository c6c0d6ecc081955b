"""Alembic environment: Strato runs migrations in-process on a connection it hands over."""

from alembic import context

from strato.store.metadata.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
