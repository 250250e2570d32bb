"""Benchmark of the Deequ engine (the real jar) against the native engine, and of the two suggesters.

On the same cached 1,000,000-row product_views table (bench/quality.py's generator) in the same
session: all default checks verified by Deequ's VerificationSuite and by the native engine's one
scan (best of two, interleaved), then Deequ's ConstraintSuggestionRunner (default rules) against
our `suggest_constraints` (once each). Ratios are Deequ seconds / ours: above 1, ours is faster.
"""

from __future__ import annotations

import sys
from typing import List

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from bench.quality import _tables
from pipelines.catalog_match_rate_quality import DEFAULT_CHECKS
from spark_app.quality.deequ_jar import loaded_build
from spark_app.quality.gate import verify

TABLE = "product_views"


def _progress(message: str) -> None:
    print(f"[deequ] {message}", file=sys.stderr, flush=True)


def run(ctx: BenchContext) -> List[BenchRow]:
    from spark_app.config import SparkConfig
    from spark_app.session import build_session

    spark = ctx.spark or build_session(SparkConfig(master="local[2]", app_name="bench-deequ"))
    try:
        if loaded_build(spark) is None:
            raise RuntimeError("the Deequ jar is not on the class path: run `make jars`")
        n = ctx.scaled(1_000_000)
        _progress(f"generating {n:,} {TABLE} rows")
        df = _tables(spark, n)[TABLE]
        return [_verify_row(spark, df, n), _suggest_row(spark, df, n)]
    finally:
        if ctx.spark is None:
            spark.stop()


def _verify_row(spark, df, n: int) -> BenchRow:
    checks = DEFAULT_CHECKS[TABLE]
    verify(spark, df.limit(1000), "warm-up", checks, "deequ")
    ours, theirs = [], []
    with PeakMemory() as mem:
        for attempt in (1, 2):
            _progress(f"{len(checks)} default checks, native ({attempt}/2)")
            native, seconds = timed(verify, spark, df, TABLE, checks, "native")
            ours.append(seconds)
            _progress(f"the same checks, Deequ ({attempt}/2)")
            deequ, seconds = timed(verify, spark, df, TABLE, checks, "deequ")
            theirs.append(seconds)
    same = [(r.status, r.value) for r in native.results] == [(r.status, r.value) for r in deequ.results]
    return BenchRow(
        stage=f"quality: {TABLE} default checks, native engine",
        rows=n,
        seconds=min(ours),
        driver_peak_mb=mem.driver_mb or None,
        ratio=min(theirs) / min(ours) if min(ours) > 0 else None,
        ratio_label="x Deequ VerificationSuite",
        extra={"checks": len(checks), "deequ_seconds": round(min(theirs), 2), "same_results": same},
    )


def _suggest_row(spark, df, n: int) -> BenchRow:
    from spark_app.quality.deequ import deequ_suggestions
    from spark_app.quality.suggest import suggest_constraints

    _progress("suggestions, ours")
    ours, seconds = timed(suggest_constraints, df)
    _progress("suggestions, Deequ's ConstraintSuggestionRunner")
    theirs, deequ_seconds = timed(deequ_suggestions, spark, df)
    return BenchRow(
        stage=f"suggest: {TABLE}, ours",
        rows=n,
        seconds=seconds,
        ratio=deequ_seconds / seconds if seconds > 0 else None,
        ratio_label="x Deequ ConstraintSuggestionRunner",
        extra={"deequ_seconds": round(deequ_seconds, 2), "ours": len(ours), "deequ": len(theirs)},
    )
