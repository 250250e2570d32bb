"""Presto source: driver mode (paged) against parallel mode (buckets on executors), real Trino.

A real Trino server (tests/support/trino.py, full JIT, in its own JVM) reads a synthetic day of
`scaled(1_000_000)` product views, one per key, written as the event logs are (gzipped JSON
lines under dt=...), then copied once into an ORC table with CREATE TABLE AS so that each
bucket query scans columns instead of re-parsing JSON. Each mode reads the day and counts the
staged result. Peaks: the Spark driver JVM, the Python workers, and this Python driver's RSS
(pages pass through it in driver mode), also as growth over the RSS measured just before the
block. The unbounded peer, `fetchall` into the driver, shows what the paging saves.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import List

import psutil

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.config import PrestoConfig, SparkConfig
from spark_app.presto.query import connect, endpoint_from_config, views_query
from spark_app.presto.read import read_presto_views
from tests.support.trino import LocalTrino, create_event_tables

DAY = date(2026, 11, 19)
PAGE_SIZE = 10_000
BUCKETS = 16
FILES = 4
NOTE = (
    "presto: against a real Trino (extra of the fetchall row: its version, start-up seconds and RSS); "
    "ratio of parallel is its speed over driver mode; ratio of driver mode is the Python driver's RSS "
    "growth of fetchall over paging (extra: python_driver_peak_mb / _growth_mb)."
)


def run(ctx: BenchContext) -> List[BenchRow]:
    keys = ctx.scaled(1_000_000)
    try:
        server = LocalTrino(fast_start=False, heap="3G", query_max_memory="1500MB")
    except FileNotFoundError as e:
        raise RuntimeError(f"presto: {e}") from None
    spark, own_spark = ctx.spark, ctx.spark is None
    if own_spark:
        from spark_app.session import build_session

        spark = build_session(SparkConfig(master="local[2]", app_name="bench-presto"))
    try:
        print("presto: starting Trino (full JIT)", file=sys.stderr)
        server.start()
        _load_day(server, ctx.work_dir / "presto-events", keys)
        base = dict(host="127.0.0.1", port=server.port, http_scheme="http", page_size=PAGE_SIZE,
                    table="bench_events", staging_dir=str(ctx.work_dir / "presto-staging"))
        driver_cfg = PrestoConfig(mode="driver", **base)
        parallel_cfg = PrestoConfig(mode="parallel", buckets=BUCKETS, **base)
        _warm_up(spark, [driver_cfg, parallel_cfg])
        trino_pid = server.process.pid
        driver = _measure(spark, driver_cfg, "presto: driver mode, paged (ours)", keys, trino_pid)
        parallel = _measure(spark, parallel_cfg, f"presto: parallel mode, {BUCKETS} buckets (ours)", keys,
                            trino_pid)
        unbounded = _measure_fetchall(PrestoConfig(**base), trino_pid)
        unbounded.extra.update(trino_version=server.home.name.rsplit("-", 1)[-1],
                               trino_startup_s=round(server.startup_seconds or 0.0, 1),
                               trino_rss_mb=round(server.rss_bytes() / 2**20))
    finally:
        server.stop()
        if own_spark:
            spark.stop()
    parallel.ratio, parallel.ratio_label = driver.seconds / parallel.seconds, "x driver mode (speed)"
    driver_growth = driver.extra["python_driver_growth_mb"]
    driver.ratio = unbounded.extra["python_driver_growth_mb"] / max(driver_growth, 1.0)
    driver.ratio_label = "x less Python driver memory growth than fetchall"
    return [driver, parallel, unbounded]


def _load_day(server: LocalTrino, root: Path, keys: int) -> None:
    """`keys` views of distinct keys as gzipped JSON lines, then the day copied into ORC."""
    started = time.perf_counter()
    folder = root / f"dt={DAY.isoformat()}"
    folder.mkdir(parents=True)
    per_file = -(-keys // FILES)
    for part in range(FILES):
        with gzip.open(folder / f"part-{part:05d}.json.gz", "wt", compresslevel=1) as f:
            for i in range(part * per_file, min(keys, (part + 1) * per_file)):
                f.write(json.dumps({"event_id": f"e{i}", "event_type": "product_view",
                                    "ts": f"2026-11-19T{i % 24:02d}:{i % 60:02d}:00Z",
                                    "advertiser_id": 1 + i % 1000, "product_id": f"p{i}"}) + "\n")
    written = time.perf_counter()
    create_event_tables(server, root)
    server.query("CREATE TABLE hive.default.bench_events WITH (format = 'ORC', partitioned_by = ARRAY['dt']) "
                 "AS SELECT * FROM hive.default.events")
    print(f"presto: {keys:,} events written in {written - started:.1f} s, copied into ORC by Trino in "
          f"{time.perf_counter() - written:.1f} s", file=sys.stderr)


def _warm_up(spark, configs: List[PrestoConfig]) -> None:
    """Both modes once on an empty day: imports, Python workers and JIT are not measured."""
    print("presto: warm-up on an empty day", file=sys.stderr)
    for cfg in configs:
        read_presto_views(spark, cfg, DAY - timedelta(days=3)).count()


def _rss_mb() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def _measure(spark, cfg: PrestoConfig, stage: str, keys: int, trino_pid: int) -> BenchRow:
    print(f"{stage} ...", file=sys.stderr)
    pages: List[int] = []
    baseline = _rss_mb()
    with PeakMemory(exclude=[trino_pid]) as peak:
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


def _measure_fetchall(cfg: PrestoConfig, trino_pid: int) -> BenchRow:
    """The peer without a bound: the whole result in the Python driver at once (no Spark)."""
    stage = "presto: fetchall into the driver (unbounded peer)"
    print(f"{stage} ...", file=sys.stderr)
    sql, params = views_query(cfg, DAY)
    baseline = _rss_mb()
    with PeakMemory(exclude=[trino_pid]) as peak:

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
