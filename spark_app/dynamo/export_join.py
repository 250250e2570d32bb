"""Driver side of the export path: the catalog's keys read from an export, joined with the day's keys.

`enrich_from_export(df, cfg, s3)` gives `df` plus `matched`, the same column as the BatchGetItem
path (`spark_app.dynamo.enrich`): True exactly when the export holds `(advertiser_id,
product_id)`; null, empty and over-long keys are never in a table, so never matched. The
export's keys are read by tasks (`spark_app.dynamo.export_read`), one file per task, and
joined in Spark: the export side is broadcast when it is the smaller and fits
(`dynamodb.export.broadcast_max_keys`); when the day's keys are the smaller and fit, they are
broadcast into a semi join that streams the export, and the (at most K) matched keys are
broadcast back onto the day; otherwise both sides are shuffled. Without manifests (per-file
counts checked in the tasks) the rows read are counted first and must equal DescribeExport's
ItemCount. Lazy like the BatchGetItem path: persist the result.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from spark_app.config import DynamoConfig, S3Config
from spark_app.dynamo.catalog import HASH_KEY, RANGE_KEY
from spark_app.dynamo.export import ExportHandle, obtain_export
from spark_app.dynamo.export_read import FILES_SCHEMA, KEYS_SCHEMA, ExportFiles, export_files, read_partition
from spark_app.errors import LookupFailed, PipelineError

__all__ = ["catalog_keys", "enrich_from_export"]

KEYS = [HASH_KEY, RANGE_KEY]


def enrich_from_export(
    df: Any,
    cfg: DynamoConfig,
    s3: Optional[S3Config] = None,
    distinct_keys: Optional[int] = None,
    handle: Optional[ExportHandle] = None,
) -> Tuple[Any, Dict[str, Any]]:
    """(`df` plus `matched`, what was read and how); LookupFailed when the export cannot be had or read."""
    from spark_app.events.files import s3_client

    missing = [c for c in KEYS if c not in df.columns]
    if missing:
        raise PipelineError(
            f"enrich_from_export: input lacks column(s) {', '.join(missing)} (has {df.columns})"
        )
    assert cfg.export is not None, "dynamodb.export is required by the export path"
    handle = handle or obtain_export(cfg, s3)
    files = export_files(handle, s3_client(s3), cfg.table)
    keys = catalog_keys(df.sparkSession, files, s3, cfg.table)
    if not files.from_manifest:
        _check_total(keys.count(), files, handle, cfg.table)
    joined, how = _join(
        df.drop("matched") if "matched" in df.columns else df, keys, files, cfg, distinct_keys
    )
    info = {
        "lookup": "export",
        "export_arn": handle.arn,
        "export_reused": handle.reused,
        "export_wait_seconds": round(handle.waited_seconds, 3),
        "export_items": files.item_count,
        "export_files": len(files.files),
        "export_manifest": files.from_manifest,
        "export_join": how,
        "export_note": files.note,
    }
    return joined, info


def catalog_keys(spark: Any, files: ExportFiles, s3: Optional[S3Config], table: str) -> Any:
    """A DataFrame of the export's `(advertiser_id, product_id)`, one row per item, one task per file."""
    rows = [(f.key, f.item_count, f.md5) for f in files.files]
    rdd = spark.sparkContext.parallelize(rows, max(1, len(rows)))
    return spark.createDataFrame(rdd, FILES_SCHEMA).mapInArrow(
        read_partition(s3, files.bucket, table), KEYS_SCHEMA
    )


def _check_total(rows: int, files: ExportFiles, handle: ExportHandle, table: str) -> None:
    if files.item_count is not None and rows != files.item_count:
        raise LookupFailed(
            f"DynamoDB table {table}: export {handle.arn}: read {rows:,} items from {len(files.files)} "
            f"data files but DescribeExport says {files.item_count:,}; refusing an export that may "
            f"have lost items"
        )


def _join(df: Any, keys: Any, files: ExportFiles, cfg: DynamoConfig, distinct_keys: Optional[int]):
    from pyspark.sql import functions as F

    assert cfg.export is not None
    limit = cfg.export.broadcast_max_keys
    items = files.item_count
    flag = F.lit(True).alias("matched")
    if items is not None and items <= limit and (distinct_keys is None or items <= distinct_keys):
        how = "broadcast export"
        joined = df.join(F.broadcast(keys.select(*KEYS, flag)), KEYS, "left")
    elif distinct_keys is not None and distinct_keys <= limit:
        how = "broadcast day keys"
        day_keys = df.select(*KEYS).where(F.col(HASH_KEY).isNotNull() & F.col(RANGE_KEY).isNotNull())
        found = keys.join(F.broadcast(day_keys.distinct()), KEYS, "left_semi")
        joined = df.join(F.broadcast(found.select(*KEYS, flag)), KEYS, "left")
    else:
        how = "shuffle"
        joined = df.join(keys.select(*KEYS, flag), KEYS, "left")
    matched = F.coalesce(F.col("matched"), F.lit(False)).alias("matched")
    return joined.select(*[F.col(c) for c in df.columns], matched), how
