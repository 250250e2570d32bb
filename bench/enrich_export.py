"""DynamoDB enrichment both ways: BatchGetItem per key against a Spark join with the table's export.

A catalog of ctx.scaled(100_000) items (moto, point-in-time recovery on) and two days: K close
to the item count (K = the item count, 80% of the keys in the catalog) and K a hundredth of
it. Each way is timed on the same persisted input, `.count()` of the persisted result, best of
REPEATS interleaved runs:

- batch_get: `enrich_with_catalog` (mapInArrow, BatchGetItem, 100 keys a request);
- export: `enrich_from_export` with the export already COMPLETED: listing its files, reading
  them in tasks and the join. The export's own request and wait (moto writes it at once; AWS
  takes minutes) are timed once and printed apart, never added to a row.

The break-even printed is the K at which the two times would be equal on this machine: the
export's time at K close to the catalog over BatchGetItem's seconds per key.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import List, Tuple

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from bench.enrich import _say, _start_spark
from spark_app.config_dynamo import DynamoConfig, ExportConfig
from spark_app.dynamo.catalog import create_catalog_table
from spark_app.dynamo.enrich import enrich_with_catalog
from spark_app.dynamo.export import obtain_export
from spark_app.dynamo.export_join import enrich_from_export

ITEMS = 100_000
ADVERTISERS = 20
REPEATS = 2
TASKS = 2

Key = Tuple[int, str]


def run(ctx: BenchContext) -> List[BenchRow]:
    from bench.enrich import _start_moto

    own_moto = ctx.moto is None
    moto = ctx.moto or _start_moto()
    spark = ctx.spark or _start_spark("bench-enrich-export")
    try:
        return _measure(ctx, moto.endpoint_url, spark)
    finally:
        if ctx.spark is None:
            spark.stop()
        if own_moto:
            moto.stop()


def _measure(ctx: BenchContext, endpoint: str, spark) -> List[BenchRow]:
    import boto3

    from spark_app.config import S3Config

    n = ctx.scaled(ITEMS)
    keys = [(1 + i % ADVERTISERS, f"sku-{i:08d}") for i in range(n)]
    rng = random.Random(5)
    items = [k for k in keys if rng.random() < 0.8]
    table, bucket = f"bench_export_{uuid.uuid4().hex[:6]}", f"bench-exports-{uuid.uuid4().hex[:6]}"
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    _load(endpoint, table, items)
    ddb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    s3 = S3Config(endpoint_url=endpoint, path_style_access=True)
    cfg = DynamoConfig(
        table=table,
        region="us-east-1",
        endpoint_url=endpoint,
        lookup="export",
        export=ExportConfig(s3_prefix=f"s3://{bucket}/exports"),
    )
    handle, wait_seconds = timed(lambda: obtain_export(cfg, s3))
    _say(f"enrich_export: {len(items):,} items; export requested and COMPLETED in {wait_seconds:.2f} s")

    rows: List[BenchRow] = []
    other_name = {"batch_get": "export", "export": "batch_get"}
    results = {}
    for label, k in (("K = items", len(items)), ("K = items / 100", max(1, len(items) // 100))):
        day = rng.sample(keys, k) if k < len(keys) else keys[:k]
        df = spark.createDataFrame(day, "advertiser_id long, product_id string")
        df = df.repartition(TASKS, "advertiser_id", "product_id").persist()
        df.count()
        runs = {"batch_get": [], "export": []}
        for _ in range(REPEATS):
            runs["batch_get"].append(_timed_count(enrich_with_catalog(df, cfg)))
            runs["export"].append(_timed_count(enrich_from_export(df, cfg, s3, k, handle)[0]))
        df.unpersist()
        best = {way: min(r, key=lambda x: x["seconds"]) for way, r in runs.items()}
        if best["batch_get"]["matched"] != best["export"]["matched"]:
            raise RuntimeError(f"matched rows differ between the two ways: {best}")
        results[label] = (k, best)
        _say(
            f"enrich_export: {label} ({k:,}): "
            + ", ".join(f"{w} {b['seconds']:.2f} s" for w, b in best.items())
        )
        for way in ("batch_get", "export"):
            b = best[way]
            other = best[other_name[way]]
            rows.append(
                BenchRow(
                    f"enrich_export: {way}, {label}",
                    k,
                    b["seconds"],
                    b["driver_mb"],
                    b["worker_mb"],
                    ratio=other["seconds"] / b["seconds"],
                    ratio_label=f"x {other_name[way]} (> 1: this way is faster)",
                    extra={
                        "runs_seconds": [round(r["seconds"], 2) for r in runs[way]],
                        "matched": b["matched"],
                        "catalog_items": len(items),
                    },
                )
            )
    k_full, best_full = results["K = items"]
    batch_seconds_per_key = best_full["batch_get"]["seconds"] / k_full
    break_even = best_full["export"]["seconds"] / batch_seconds_per_key
    rows.append(
        BenchRow(
            "enrich_export: export request + wait on moto (excluded above)",
            len(items),
            wait_seconds,
            extra={
                "break_even_keys": round(break_even),
                "break_even_share_of_items": round(break_even / len(items), 3),
                "batch_get_keys_per_s": round(1 / batch_seconds_per_key),
            },
        )
    )
    _say(
        f"enrich_export: break-even on time at K = {break_even:,.0f} ({break_even / len(items):.0%} of items)"
    )
    return rows


def _timed_count(enriched) -> dict:
    enriched = enriched.persist()
    with PeakMemory() as mem:
        _, seconds = timed(enriched.count)
    matched = enriched.filter("matched").count()
    enriched.unpersist()
    return {"seconds": seconds, "matched": matched, "driver_mb": mem.driver_mb, "worker_mb": mem.worker_mb}


def _load(endpoint: str, table: str, items: List[Key]) -> None:
    import boto3

    create_catalog_table(boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1"), table)
    res = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1").Table(table)
    start = time.perf_counter()
    with res.batch_writer() as writer:
        for a, p in items:
            writer.put_item(Item={"advertiser_id": a, "product_id": p, "title": f"product {p}"})
    _say(f"enrich_export: loaded {len(items):,} items in {time.perf_counter() - start:.1f} s")
