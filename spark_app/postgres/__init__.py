"""PostgreSQL: connection, schema migrations, bulk load into staging, exactly-once publish.

`load` runs on executors (COPY from each partition into the run's staging table); `publish`,
`runs`, `staging`, `partitions`, `schema`, `checks` run on the driver; `migrations/` holds the
frozen Alembic revisions.
"""

from __future__ import annotations
