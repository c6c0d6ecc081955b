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

# The MLflow run of each tracked resource (a training or tuning job), and how far the platform has
# forwarded the resource's metric points into it (``metric_cursor`` is the last forwarded point id), so
# a restarted control plane or a tracking server that was down resumes where it stopped.
tracking_runs = sa.Table(
    "tracking_runs",
    metadata,
    sa.Column("resource_uid", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("experiment_id", sa.String(64), nullable=False),
    sa.Column("metric_cursor", sa.Integer, nullable=False),
    sa.Column("ended", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# Append-only audit log of model version approvals: every submission, approval, rejection, with who,
# when, why and the policy gates evaluated. A version's approval status is its latest decisive event.
approval_events = sa.Table(
    "approval_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Index("ix_approval_events_model", "model", "version", "id"),
)

# Model cards, versioned with the model: each edit of a version's card is a new revision.
model_cards = sa.Table(
    "model_cards",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("card", sa.JSON, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.UniqueConstraint("model", "version", "revision", name="uq_model_cards_model"),
)

# Lineage: nodes are things (datasets with a fingerprint or table version, code snapshots, jobs, runs,
# model versions, endpoints, ...), keyed by kind and a stable key; edges say how one came from another.
lineage_nodes = sa.Table(
    "lineage_nodes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("key", sa.String(1024), nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("attrs", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("kind", "key", name="uq_lineage_nodes_kind"),
    sa.Index("ix_lineage_nodes_name", "kind", "name"),
)

lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("src", sa.Integer, sa.ForeignKey("lineage_nodes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("dst", sa.Integer, sa.ForeignKey("lineage_nodes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("relation", sa.String(64), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.UniqueConstraint("src", "dst", "relation", name="uq_lineage_edges_src"),
    sa.Index("ix_lineage_edges_dst", "dst"),
)

# Every revision of a versioned definition (feature definitions, later pipelines): the spec as applied,
# numbered from 1, so a change can be shown, audited and rolled back.
resource_revisions = sa.Table(
    "resource_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.UniqueConstraint("kind", "name", "revision", name="uq_resource_revisions_kind"),
)

# The cost ledger: one row per billable item of a resource (a job attempt, a batch worker attempt, an
# endpoint variant's replica time in one UTC day), priced at the instance its resources map to on the
# workspace's reference target. Rows are upserted by (resource_uid, item) as time passes, so a ledger pass
# is idempotent; rows outlive their resource (what was spent stays spent).
cost_records = sa.Table(
    "cost_records",
    metadata,
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
    sa.Index("ix_cost_records_ended_at", "ended_at"),
)

# The pipeline step cache: a step's content hash (definition, code snapshot, parameters, input
# fingerprints) -> the outputs and metrics a run of it produced. A hit is used only while the outputs
# still exist and the entry has not expired.
pipeline_cache = sa.Table(
    "pipeline_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("job", sa.String(255), nullable=False),
    sa.Column("run", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)
