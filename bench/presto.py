"""Presto source: driver mode (paged) against parallel mode (buckets on executors).

The test coordinator runs in its own process (so its DuckDB and JSON encoding do not count
against the driver), serving a synthetic day of `scaled(1_000_000)` distinct keys. Each mode
reads the day and counts the staged result. Peaks: the Spark driver JVM, the Python workers,
and this Python driver's RSS (pages pass through it in driver mode), also as growth over the
RSS measured just before the block. The unbounded peer, `fetchall` into the driver, shows
what the paging saves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import List

import psutil

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.config import PrestoConfig, SparkConfig
from spark_app.presto.query import connect, endpoint_from_config, views_query
from spark_app.presto.read import read_presto_views

DAY = date(2026, 11, 19)
SERVER = Path(__file__).resolve().parent.parent / "tests" / "support" / "presto_server.py"
PAGE_SIZE = 10_000
NOTE = (
    "presto: ratio of parallel is its speed over driver mode; ratio of driver mode is the Python "
    "driver's RSS growth of fetchall over paging (extra: python_driver_peak_mb / _growth_mb)."
)


def run(ctx: BenchContext) -> List[BenchRow]:
    keys = ctx.scaled(1_000_000)
    spark, own_spark = ctx.spark, ctx.spark is None
    if own_spark:
        from spark_app.session import build_session

        spark = build_session(SparkConfig(master="local[2]", app_name="bench-presto"))
    server = _start_server(keys)
    try:
        port = int(server.stdout.readline())
        base = dict(host="127.0.0.1", port=port, http_scheme="http", page_size=PAGE_SIZE,
                    staging_dir=str(ctx.work_dir / "presto-staging"))
        driver_cfg = PrestoConfig(mode="driver", **base)
        parallel_cfg = PrestoConfig(mode="parallel", buckets=16, **base)
        _warm_up(spark, [driver_cfg, parallel_cfg])
        driver = _measure(spark, driver_cfg, "presto: driver mode, paged (ours)", keys)
        parallel = _measure(spark, parallel_cfg, "presto: parallel mode, 16 buckets (ours)", keys)
        unbounded = _measure_fetchall(PrestoConfig(**base))
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        if own_spark:
            spark.stop()
    parallel.ratio, parallel.ratio_label = driver.seconds / parallel.seconds, "x driver mode (speed)"
    driver_growth = driver.extra["python_driver_growth_mb"]
    driver.ratio = unbounded.extra["python_driver_growth_mb"] / max(driver_growth, 1.0)
    driver.ratio_label = "x less Python driver memory growth than fetchall"
    return [driver, parallel, unbounded]


def _start_server(keys: int) -> subprocess.Popen:
    print(f"presto: starting the test coordinator with {keys:,} keys", file=sys.stderr)
    return subprocess.Popen(
        [sys.executable, str(SERVER), "--keys", str(keys), "--page-size", str(PAGE_SIZE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def _warm_up(spark, configs: List[PrestoConfig]) -> None:
    """Both modes once on an empty day: imports, Python workers and JIT are not measured."""
    print("presto: warm-up on an empty day", file=sys.stderr)
    for cfg in configs:
        read_presto_views(spark, cfg, DAY - timedelta(days=3)).count()


def _rss_mb() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def _measure(spark, cfg: PrestoConfig, stage: str, keys: int) -> BenchRow:
    print(f"{stage} ...", file=sys.stderr)
    pages: List[int] = []
    baseline = _rss_mb()
    with PeakMemory() as peak:
        rows, seconds = timed(
            lambda: read_presto_views(spark, cfg, DAY, on_page=lambda n, r: pages.append(r)).count()
        )
    assert rows == keys, f"{stage}: {rows} rows, expected {keys}"
    return BenchRow(
        stage=stage,
        rows=rows,
        seconds=seconds,
        driver_peak_mb=peak.driver_mb,
        worker_peak_mb=peak.worker_mb or None,
        extra={
            "python_driver_peak_mb": round(peak.python_driver_mb, 1),
            "python_driver_growth_mb": round(max(peak.python_driver_mb - baseline, 0.0), 1),
            "pages_through_driver": len(pages),
            "page_size": cfg.page_size,
        },
    )


def _measure_fetchall(cfg: PrestoConfig) -> BenchRow:
    """The peer without a bound: the whole result in the Python driver at once (no Spark)."""
    stage = "presto: fetchall into the driver (unbounded peer)"
    print(f"{stage} ...", file=sys.stderr)
    sql, params = views_query(cfg, DAY)
    baseline = _rss_mb()
    with PeakMemory() as peak:

        def fetch_all() -> int:
            cursor = connect(endpoint_from_config(cfg)).cursor()
            cursor.execute(sql, params)
            return len(cursor.fetchall())

        rows, seconds = timed(fetch_all)
    return BenchRow(
        stage=stage,
        rows=rows,
        seconds=seconds,
        extra={
            "python_driver_peak_mb": round(peak.python_driver_mb, 1),
            "python_driver_growth_mb": round(max(peak.python_driver_mb - baseline, 0.0), 1),
        },
    )
