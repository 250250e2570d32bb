"""Metrics history of the data-quality gate (Deequ's MetricsRepository, in PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20

One row per (pipeline, table, day, metric); re-running a day replaces that day's rows, so the
history the anomaly checks read holds one value per day. The index serves those reads: one
metric of one table over the previous N days.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def migration_schema() -> str:
    """The schema chosen by the caller of upgrade_schema (frozen here: revisions import no runtime code)."""
    return context.config.attributes["schema"]


def upgrade() -> None:
    schema = migration_schema()
    op.create_table(
        "quality_metrics",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(precision=53)),
        sa.Column("run_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("recorded_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint(
            "pipeline", "table_name", "day", "entity", "instance", "name", name="quality_metrics_pkey"
        ),
        schema=schema,
    )
    op.create_index(
        "quality_metrics_series",
        "quality_metrics",
        ["pipeline", "table_name", "name", "instance", "day"],
        schema=schema,
    )


def downgrade() -> None:
    schema = migration_schema()
    op.drop_index("quality_metrics_series", table_name="quality_metrics", schema=schema)
    op.drop_table("quality_metrics", schema=schema)
