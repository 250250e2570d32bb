"""Benchmark of the data-quality gate: the pipeline's default checks on generated detail rows.

For each table (cached, as the pipeline hands them over): seconds and Spark jobs of all default
checks in one verification (the native engine's single scan), against the same checks verified
one at a time (one scan per check, the way a naive runner would read the table; Deequ itself
scans once per grouping column set). The ratio is one-at-a-time seconds / ours: above 1 means
the single scan is faster. Each side is measured twice, interleaved, and the faster run counts.
"""

from __future__ import annotations

import sys
from typing import List

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from pipelines.catalog_match_rate_quality import DEFAULT_CHECKS
from spark_app.quality.gate import verify

ADVERTISERS = 500


def _progress(message: str) -> None:
    print(f"[quality] {message}", file=sys.stderr, flush=True)


def _tables(spark, n: int):
    """product_views with n unique keys, and advertiser_match_rates aggregated from it; cached."""
    from pyspark.sql import functions as F

    views = (
        spark.range(n)
        .select(
            F.lit("2024-05-01").cast("date").alias("day"),
            (F.col("id") % ADVERTISERS).alias("advertiser_id"),
            F.concat(F.lit("p"), F.col("id").cast("string")).alias("product_id"),
            (F.col("id") % 7 + 1).alias("view_count"),
            (F.col("id") % 5 != 0).alias("matched"),
        )
        .cache()
    )
    rates = (
        views.groupBy("day", "advertiser_id")
        .agg(
            F.count(F.lit(1)).alias("total_products"),
            F.sum(F.col("matched").cast("long")).alias("matched_products"),
            F.sum("view_count").alias("total_views"),
            F.sum(F.when(F.col("matched"), F.col("view_count")).otherwise(0)).alias("matched_views"),
        )
        .withColumn("match_rate", F.col("matched_views") / F.col("total_views"))
        .cache()
    )
    views.count()
    rates.count()
    return {"product_views": views, "advertiser_match_rates": rates}


def run(ctx: BenchContext) -> List[BenchRow]:
    spark = ctx.spark
    own = spark is None
    if own:
        from spark_app.config import SparkConfig
        from spark_app.session import build_session

        spark = build_session(SparkConfig(master="local[2]", app_name="bench-quality"))
    try:
        n = ctx.scaled(1_000_000)
        _progress(f"generating {n:,} product_views rows")
        tables = _tables(spark, n)
        verify(
            spark,
            tables["advertiser_match_rates"],
            "warm-up",
            DEFAULT_CHECKS["advertiser_match_rates"],
            "native",
        )
        return [_measure(spark, name, df) for name, df in tables.items()]
    finally:
        if own:
            spark.stop()


def _measure(spark, table: str, df) -> BenchRow:
    checks = DEFAULT_CHECKS[table]
    rows = df.count()
    together, one_by_one = [], []
    with PeakMemory() as mem:
        for attempt in (1, 2):  # interleaved, best of two: the machine is shared
            _progress(f"{table}: {len(checks)} checks on {rows:,} rows, together ({attempt}/2)")
            report, seconds = timed(verify, spark, df, table, checks, "native")
            together.append(seconds)
            _progress(f"{table}: the same checks one at a time ({attempt}/2)")
            singles, single_seconds = timed(lambda: [verify(spark, df, table, [c], "native") for c in checks])
            one_by_one.append(single_seconds)
    seconds, single_seconds = min(together), min(one_by_one)
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        jobs_without_aqe = verify(spark, df, table, checks, "native").spark_jobs
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
    return BenchRow(
        stage=f"quality: {table} default checks, one scan (native)",
        rows=rows,
        seconds=seconds,
        driver_peak_mb=mem.driver_mb or None,
        ratio=single_seconds / seconds if seconds > 0 else None,
        ratio_label="x one verification per check",
        extra={
            "checks": len(checks),
            "spark_jobs": report.spark_jobs,
            "spark_jobs_without_aqe": jobs_without_aqe,
            "jobs_one_per_check": sum(r.spark_jobs or 0 for r in singles),
            "seconds_one_per_check": round(single_seconds, 2),
            "passed": report.passed,
        },
    )
