"""Driver side of the enrichment: add `matched` to a DataFrame with one lookup pass per partition.

`enrich_with_catalog` plans a `mapInArrow` (or, for comparison, `mapInPandas`) whose partition
function (`spark_app.dynamo.lookup.arrow_partition`) builds its own `CatalogLookup` (client,
thread pool, cache) on the executor: nothing unpicklable crosses from the driver. The function
closes over the config and the counters only.
"""

from __future__ import annotations

from typing import Any, Optional

from spark_app.config import DynamoConfig
from spark_app.dynamo.catalog import HASH_KEY, RANGE_KEY
from spark_app.dynamo.counters import LookupCounters
from spark_app.dynamo.lookup import arrow_partition, pandas_partition
from spark_app.errors import PipelineError

__all__ = ["enrich_with_catalog"]


def enrich_with_catalog(
    df: Any, cfg: DynamoConfig, counters: Optional[LookupCounters] = None, engine: str = "arrow"
) -> Any:
    """`df` plus `matched` (boolean, never null); lazy, so persist the result before reusing it.

    `df` needs `advertiser_id` (long) and `product_id` (string). `engine="pandas"` runs the
    same lookup through mapInPandas; it exists to compare the two (Arrow is the faster one).
    """
    from pyspark.sql.types import BooleanType, StructField, StructType

    missing = [c for c in (HASH_KEY, RANGE_KEY) if c not in df.columns]
    if missing:
        raise PipelineError(
            f"enrich_with_catalog: input lacks column(s) {', '.join(missing)} (has {df.columns})"
        )
    if "matched" in df.columns:
        df = df.drop("matched")
    schema = StructType(list(df.schema.fields) + [StructField("matched", BooleanType(), nullable=False)])
    if engine == "arrow":
        return df.mapInArrow(arrow_partition(cfg, counters), schema)
    if engine == "pandas":
        return df.mapInPandas(pandas_partition(cfg, counters), schema)
    raise ValueError(f"engine must be 'arrow' or 'pandas', got {engine!r}")
