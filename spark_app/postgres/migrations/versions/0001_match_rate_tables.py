"""Detail and aggregate tables of the catalog match rate, and the runs journal.

Revision ID: 0001
Revises:
Create Date: 2026-11-20

Tables live in the schema the caller of upgrade_schema chose: read it with migration_schema().
Non-key columns stay nullable: completeness is the quality gate's job, which reports it by
name instead of failing the load on a constraint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def migration_schema() -> str:
    """The schema chosen by the caller of upgrade_schema (frozen here: revisions import no runtime code)."""
    return context.config.attributes["schema"]

RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")


def upgrade() -> None:
    schema = migration_schema()
    op.create_table(
        "product_views",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("advertiser_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("view_count", sa.BigInteger()),
        sa.Column("matched", sa.Boolean()),
        sa.PrimaryKeyConstraint("day", "advertiser_id", "product_id", name="product_views_pkey"),
        schema=schema,
    )
    op.create_table(
        "advertiser_match_rates",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("advertiser_id", sa.BigInteger(), nullable=False),
        sa.Column("total_products", sa.BigInteger()),
        sa.Column("matched_products", sa.BigInteger()),
        sa.Column("total_views", sa.BigInteger()),
        sa.Column("matched_views", sa.BigInteger()),
        sa.Column("match_rate", sa.Float(precision=53)),
        sa.PrimaryKeyConstraint("day", "advertiser_id", name="advertiser_match_rates_pkey"),
        schema=schema,
    )
    statuses = ", ".join(f"'{s}'" for s in RUN_STATUSES)
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.Text(), primary_key=True),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("rows_in", sa.BigInteger()),
        sa.Column("rows_out", sa.BigInteger()),
        sa.Column("rows_rejected", sa.BigInteger()),
        sa.Column("started_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("error", sa.Text()),
        sa.Column("stats", postgresql.JSONB()),
        sa.CheckConstraint(f"status IN ({statuses})", name="pipeline_runs_status_check"),
        schema=schema,
    )
    op.create_index("pipeline_runs_pipeline_day", "pipeline_runs", ["pipeline", "day"], schema=schema)


def downgrade() -> None:
    schema = migration_schema()
    op.drop_table("pipeline_runs", schema=schema)
    op.drop_table("advertiser_match_rates", schema=schema)
    op.drop_table("product_views", schema=schema)
