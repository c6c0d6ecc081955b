"""The cost ledger.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("resource_uid", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("item", sa.String(255), nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double, nullable=False),
        sa.Column("seconds", sa.Double, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("instance_type", sa.String(128), nullable=False),
        sa.Column("cloud", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("purchase", sa.String(32), nullable=False),
        sa.Column("hourly", sa.Double, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Column("model", sa.String(512), nullable=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.UniqueConstraint("resource_uid", "item", name="uq_cost_records_resource_uid"),
    )
    op.create_index("ix_cost_records_ended_at", "cost_records", ["ended_at"])


def downgrade() -> None:
    op.drop_table("cost_records")
