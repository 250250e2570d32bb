"""Driver side: a day's partition of a table partitioned `BY LIST (day)`, prepared and swapped in.

A run's staging table becomes the day's partition: `prepare_partition` (its own transaction,
invisible to readers) drops the task column, adds a CHECK on the day and builds the primary
key; `swap_partition` (inside the publish transaction) detaches and drops the day's old
partition, attaches the staging table and renames it and its key to the stable names.
"""

from __future__ import annotations

from datetime import date
from typing import Any, List

from spark_app.errors import SinkError
from spark_app.postgres.connect import check_identifier, qualified, quote_ident
from spark_app.postgres.load import PART_COLUMN

PARTITION_KEY = "LIST (day)"  # the only partitioning publish() can swap a day of
DAY_CHECK = "staged_day"  # the staging table's CHECK (day = <run day>), kept on the partition


def day_partition(table: str, day: date) -> str:
    """The stable name of `table`'s partition for `day`, e.g. product_views_d20261119."""
    return f"{check_identifier(table, 'table')}_d{day.strftime('%Y%m%d')}"


def is_day_partitioned(conn: Any, schema: str, table: str, day: date) -> bool:
    """True for a target partitioned BY LIST (day); SinkError for any other partitioning."""
    from sqlalchemy import text

    sql = text("SELECT pg_get_partkeydef(to_regclass(:t))")
    key = conn.execute(sql, {"t": qualified(schema, table)}).scalar()
    conn.commit()
    if key is None:
        return False
    if key != PARTITION_KEY:
        raise SinkError(
            f"table {schema}.{table} is partitioned by {key}; publish can swap a day only "
            f"of a table partitioned by {PARTITION_KEY}"
        )
    partition = day_partition(table, day)
    if len(partition) + len("_pkey") > 63:
        raise SinkError(f"partition name {partition}_pkey of {schema}.{table} is longer than "
                        "63 characters; shorten the table name")
    return True


def prepare_partition(
    conn: Any, schema: str, staging: str, day: date, keys: List[str], key_name: str
) -> None:
    """Turn the loaded staging table into a finished partition, in its own transaction.

    Dropping `_part` only marks the column dropped; the primary key is built by one sort;
    the CHECK lets ATTACH PARTITION skip its validation scan.
    """
    from sqlalchemy import text

    parts = [
        f"DROP COLUMN {PART_COLUMN}",
        f"ADD CONSTRAINT {quote_ident(DAY_CHECK)} CHECK (day = DATE '{day.isoformat()}')",
    ]
    if keys:
        cols = ", ".join(quote_ident(k) for k in keys)
        parts.append(f"ADD CONSTRAINT {quote_ident(key_name)} PRIMARY KEY ({cols})")
    conn.execute(text(f"ALTER TABLE {qualified(schema, staging)} " + ", ".join(parts)))
    conn.commit()


def swap_partition(conn: Any, schema: str, table: str, staging: str, day: date, key_name: str = "") -> None:
    """Inside the publish transaction: the day's old partition out, the staging table in."""
    from sqlalchemy import text

    target = qualified(schema, table)
    bound = f"FOR VALUES IN ('{day.isoformat()}')"
    old = conn.execute(
        text(
            "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = to_regclass(:t) AND pg_get_expr(c.relpartbound, c.oid) = :b"
        ),
        {"t": target, "b": bound},
    ).all()
    for old_schema, name in old:
        conn.execute(text(f"ALTER TABLE {target} DETACH PARTITION {qualified(old_schema, name)}"))
        conn.execute(text(f"DROP TABLE {qualified(old_schema, name)}"))
    partition = day_partition(table, day)
    conn.execute(text(f"ALTER TABLE {target} ATTACH PARTITION {qualified(schema, staging)} {bound}"))
    conn.execute(text(f"ALTER TABLE {qualified(schema, staging)} RENAME TO {quote_ident(partition)}"))
    if key_name:
        new_key = quote_ident(partition + "_pkey")
        conn.execute(text(f"ALTER INDEX {qualified(schema, key_name)} RENAME TO {new_key}"))
