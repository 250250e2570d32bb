"""The Presto (Trino) source: the day's product-view counts from a query.

`query` builds the SQL and pages results (driver, or executors in parallel mode); `retry` retries
transient answers (NO_NODES_AVAILABLE, HTTP 503, a refused connection...); `read` turns
them into a DataFrame in one of two modes: paged on the driver, or one bucket per Spark task.
"""

from __future__ import annotations
