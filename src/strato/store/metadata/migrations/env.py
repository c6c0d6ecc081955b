"""Alembic environment: Strato runs migrations in-process on a connection it hands over."""

from alembic import context

from strato.store.metadata.tables import metadata

connection = context.config.attributes["connection"]


def _ours(obj, name, type_, reflected, compare_to):
    """Autogenerate compares Strato's tables only: Optuna's share the database and are Optuna's."""
    return type_ != "table" or name in metadata.tables


context.configure(
    connection=connection,
    target_metadata=metadata,
    include_object=_ours,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
