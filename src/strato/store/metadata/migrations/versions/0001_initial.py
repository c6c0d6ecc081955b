"""Resources, their event history and metric time series.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
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
    )
    op.create_index("ix_resources_active", "resources", ["active", "kind"])
    op.create_table(
        "resource_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("resource_uid", sa.String(32), sa.ForeignKey("resources.uid", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_resource_events_resource_uid", "resource_events", ["resource_uid", "id"])
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("resource_uid", sa.String(32), sa.ForeignKey("resources.uid", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_metric_points_resource_uid", "metric_points", ["resource_uid", "name", "id"])


def downgrade() -> None:
    op.drop_table("metric_points")
    op.drop_table("resource_events")
    op.drop_table("resources")
