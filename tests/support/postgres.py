"""PostgreSQL for tests: the Spark schemas of the job's two tables, and one-statement SQL."""

from __future__ import annotations

from typing import Any, List, Tuple

from pyspark.sql import types as T


def sql(spec: Any, query: str, **params: Any) -> List[Tuple]:
    """Run `query` with `params` on `spec`'s database and commit; the rows it returns, if any."""
    from sqlalchemy import text

    engine = spec.engine()
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


DETAIL = T.StructType(  # product_views
    [
        T.StructField("day", T.DateType()),
        T.StructField("advertiser_id", T.LongType()),
        T.StructField("product_id", T.StringType()),
        T.StructField("view_count", T.LongType()),
        T.StructField("matched", T.BooleanType()),
    ]
)
_COUNTS = ("advertiser_id", "total_products", "matched_products", "total_views", "matched_views")
AGG = T.StructType(  # advertiser_match_rates
    [T.StructField("day", T.DateType())]
    + [T.StructField(c, T.LongType()) for c in _COUNTS]
    + [T.StructField("match_rate", T.DoubleType())]
)
