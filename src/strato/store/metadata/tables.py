"""The metadata schema. Alembic migrations in ``migrations/versions`` create and evolve it; this module
is the description the store's queries use (SQLAlchemy Core, no ORM sessions to keep hot paths lean)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per resource of any kind. ``spec`` and ``desired`` are what users asked for (written by the
# API); ``status`` and ``state`` are what reconcilers observed (written by the control plane). Keeping
# them in separate columns lets both sides update without overwriting each other.
resources = sa.Table(
    "resources",
    metadata,
    sa.Column("uid", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("desired", sa.JSON, nullable=False),
    sa.Column("status", sa.JSON, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    sa.Index("ix_resources_active", "active", "kind"),
)

# Append-only history of every state transition, with why it happened.
resource_events = sa.Table(
    "resource_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("resource_uid", sa.String(32), sa.ForeignKey("resources.uid", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_resource_events_resource_uid", "resource_uid", "id"),
)

# Time series: metrics captured from logs, reported by code, and system usage samples.
metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("resource_uid", sa.String(32), sa.ForeignKey("resources.uid", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("step", sa.Integer, nullable=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Index("ix_metric_points_resource_uid", "resource_uid", "name", "id"),
)
