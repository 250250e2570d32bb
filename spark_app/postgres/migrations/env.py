"""Alembic environment for the job's tables, driven programmatically by `spark_app.postgres.schema`.

There is no alembic.ini: `upgrade_schema` hands over an open connection (already holding the
migration advisory lock, inside its transaction) and the target schema through
`config.attributes`. Offline (SQL script) mode is not supported.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through spark_app.postgres.schema.upgrade_schema (online mode)")

context.configure(
    connection=connection,
    target_metadata=None,
    version_table_schema=config.attributes["schema"],
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
