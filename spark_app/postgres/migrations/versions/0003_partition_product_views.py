"""product_views partitioned by day: one partition per day, published by swapping it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-20

The existing table is renamed, a table with the same columns and primary key is created
`PARTITION BY LIST (day)`, each day already stored gets its own partition (named as publish
names them, e.g. product_views_d20261119) and its rows, and the old table is dropped. Runs in
the migration's transaction: a failure leaves the old table as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def migration_schema() -> str:
    """The schema chosen by the caller of upgrade_schema (frozen here: revisions import no runtime code)."""
    return context.config.attributes["schema"]


def qualified(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'


def day_partition(table: str, day) -> str:
    """The partition name publish uses for a day, e.g. product_views_d20261119."""
    return f"{table}_d{day.strftime('%Y%m%d')}"


TABLE = "product_views"
OLD = "product_views_unpartitioned"
COLUMNS = "day, advertiser_id, product_id, view_count, matched"
KEY = "day, advertiser_id, product_id"


def upgrade() -> None:
    schema = migration_schema()
    target, old = qualified(schema, TABLE), qualified(schema, OLD)
    op.execute(f"ALTER TABLE {target} RENAME TO {OLD}")
    op.execute(f'ALTER TABLE {old} RENAME CONSTRAINT "product_views_pkey" TO "{OLD}_pkey"')
    op.execute(
        f"CREATE TABLE {target} (day date NOT NULL, advertiser_id bigint NOT NULL, product_id text NOT NULL, "
        f'view_count bigint, matched boolean, CONSTRAINT "product_views_pkey" PRIMARY KEY ({KEY})) '
        "PARTITION BY LIST (day)"
    )
    days = op.get_bind().execute(sa.text(f"SELECT DISTINCT day FROM {old} ORDER BY day")).scalars().all()
    for day in days:
        partition = qualified(schema, day_partition(TABLE, day))
        op.execute(f"CREATE TABLE {partition} PARTITION OF {target} FOR VALUES IN ('{day.isoformat()}')")
    op.execute(f"INSERT INTO {target} ({COLUMNS}) SELECT {COLUMNS} FROM {old} ORDER BY {KEY}")
    op.execute(f"DROP TABLE {old}")


def downgrade() -> None:
    schema = migration_schema()
    target, old = qualified(schema, TABLE), qualified(schema, OLD)
    op.execute(
        f"CREATE TABLE {old} (day date NOT NULL, advertiser_id bigint NOT NULL, product_id text NOT NULL, "
        f'view_count bigint, matched boolean, CONSTRAINT "{OLD}_pkey" PRIMARY KEY ({KEY}))'
    )
    op.execute(f"INSERT INTO {old} ({COLUMNS}) SELECT {COLUMNS} FROM {target} ORDER BY {KEY}")
    op.execute(f"DROP TABLE {target}")  # its partitions go with it
    op.execute(f"ALTER TABLE {old} RENAME TO {TABLE}")
    op.execute(f'ALTER TABLE {target} RENAME CONSTRAINT "{OLD}_pkey" TO "product_views_pkey"')
