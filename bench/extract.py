"""Event-log extraction: days of ctx.scaled(1_000_000) and ctx.scaled(4_000_000) events, gzipped
JSON lines and Parquet, against DuckDB doing the same work on the same files.

Each day is written by `spark_app.local.sample_data.write_day` (8 files per folder, dt=D complete,
dt=D+1 partial). Measured on Spark local[2], each after a warm-up read of a small day:

- ours: `read_day_events`, what the pipeline runs: every line read, validated with a reason per
  rejected line, counted (counts that add up), the day kept, dedup by event_id and views per
  key in the same pass (Arrow buckets), the result cached;
- the peer: DuckDB in this process with 2 threads: every field read as text, advertiser id and
  ts validated (ISO-8601 with or without offset, epoch milliseconds), the UTC day kept, dedup by
  event_id (smallest (ts, type, advertiser, product) wins), views counted per key;
- Spark's own typed JSON (or Parquet) reader, keeping the day and hashing every column (no
  validation, no counts, no dedup), as before, for comparison with earlier runs;
- ours on the smaller gzip JSON day uploaded to moto's S3 (the bench's moto server), listed and
  read through boto3 exactly as the job reads `s3://` locally. Its ratio is its time over the
  local-file time: the cost of the S3 path through a local emulator, not the cost of S3 itself.

Ratios: peer seconds / our seconds (1 = as fast as DuckDB, 0.33 = three times slower). Memory:
the driver JVM's heap in use after the extract (after a GC, the persisted views included) and
the largest Python worker's resident peak, at both sizes.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import List

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.config import EventsConfig, S3Config, SparkConfig
from spark_app.events.files import day_folders, list_source_files, s3_client
from spark_app.events.read import read_day_events
from spark_app.local.s3_upload import ensure_bucket, upload_tree
from spark_app.local.sample_data import SampleSpec, write_day

SIZES = (1_000_000, 4_000_000)
FILES = 8
BUCKET = "bench-extract"
DAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 12, tzinfo=timezone.utc)
# ts as text: the day mixes ISO-8601 strings and epoch milliseconds, which no single type reads.
PEER_SCHEMA = "event_id string, event_type string, ts string, advertiser_id bigint, product_id string"


def run(ctx: BenchContext) -> List[BenchRow]:
    own_spark = ctx.spark is None
    spark = ctx.spark or _start_spark()
    try:
        return _measure(ctx, spark)
    finally:
        if own_spark:
            spark.stop()


def _measure(ctx: BenchContext, spark) -> List[BenchRow]:
    rows: List[BenchRow] = []
    for fmt in ("json", "parquet"):
        _warm_up(spark, ctx.work_dir / f"warm-{fmt}", fmt)
        heaps = {}
        for events in SIZES:
            n = ctx.scaled(events)
            root = ctx.work_dir / f"extract-{fmt}-{n}"
            _say(f"extract: writing {n:,} events as {fmt} under {root}")
            sample, seconds = timed(write_day, root, DAY, SampleSpec(events=n), fmt=fmt, files=FILES)
            mb = sum(p.stat().st_size for p in sample.files) / 2**20
            _say(f"extract: written in {seconds:.1f}s ({mb:.0f} MB)")
            day_rows = _measure_day(spark, root, fmt, n, sample, heaps)
            rows += day_rows
            if fmt == "json" and events == SIZES[0] and ctx.moto is not None:
                s3_day = (root, day_rows[0])  # read from S3 after the larger day: its workers then
                continue  # load boto3, which would count in the larger day's worker peak
            shutil.rmtree(root, ignore_errors=True)
        if fmt == "json" and ctx.moto is not None:
            rows.append(_measure_s3(ctx, spark, *s3_day))
            shutil.rmtree(s3_day[0], ignore_errors=True)
    return rows


def _measure_s3(ctx: BenchContext, spark, root: Path, local_row: BenchRow) -> BenchRow:
    """The same gzip JSON day from moto's S3 (after a warm-up read of a small day there)."""
    s3 = S3Config(endpoint_url=ctx.moto.endpoint_url, path_style_access=True)
    client = s3_client(s3)
    ensure_bucket(client, BUCKET)
    warm = ctx.work_dir / "warm-s3"
    write_day(warm, DAY, SampleSpec(events=20_000), files=2)
    upload_tree(client, warm, f"s3://{BUCKET}/warm")
    shutil.rmtree(warm, ignore_errors=True)
    quarantine = str(ctx.work_dir / "s3-quarantine")  # the bench's session has no S3A for moto
    _ours(spark, EventsConfig(path=f"s3://{BUCKET}/warm", quarantine_path=quarantine), s3)[0].release()
    _, upload = timed(upload_tree, client, root, f"s3://{BUCKET}/events")
    with PeakMemory() as mem:
        cfg = EventsConfig(path=f"s3://{BUCKET}/events", quarantine_path=quarantine)
        (result, views), seconds = timed(_ours, spark, cfg, s3)
    lines = result.counts["lines_read"]
    result.release()
    _say(f"extract: ours gzip JSON from moto S3: {lines:,} lines in {seconds:.1f}s, {result.counts}")
    return BenchRow(
        "extract: gzip JSON from moto S3 (boto3), validated + counted + views",
        lines,
        seconds,
        driver_peak_mb=mem.driver_mb,
        worker_peak_mb=mem.worker_mb or None,
        ratio=seconds / local_row.seconds,
        ratio_label="x the same day from local files (S3 path through a local emulator)",
        extra={"views": views, "local_views": local_row.extra["views"], "upload_seconds": round(upload, 2)},
    )


def _measure_day(spark, root: Path, fmt: str, n: int, sample, heaps) -> List[BenchRow]:
    cfg = EventsConfig(path=str(root), format=fmt)
    label = "gzip JSON" if fmt == "json" else "Parquet"
    (duck_views, duck), duck_s = timed(duckdb_views, root, fmt)
    with PeakMemory() as mem:
        (result, views), ours = timed(_ours, spark, cfg)
    heap_mb = driver_heap_in_use_mb(spark)
    result.release()
    heaps[n] = heap_mb
    lines = result.counts["lines_read"]
    _say(f"extract: ours {label} {n:,}: {lines:,} lines in {ours:.1f}s, {result.spark_jobs} jobs")
    _say(f"extract: counts {result.counts}")
    _say(f"extract: duckdb {label} {n:,}: {duck_s:.1f}s, {duck['keys']:,} keys, {duck['views']:,} views")
    typed_rows, typed = timed(_spark_typed, spark, root, fmt)
    first = heaps[min(heaps)]
    return [
        BenchRow(
            f"extract {n // 1000:,}k: {label}, validated + counted + views (ours)",
            lines,
            ours,
            driver_peak_mb=mem.driver_mb,
            worker_peak_mb=mem.worker_mb or None,
            ratio=duck_s / ours,
            ratio_label="x DuckDB (2 threads), same work (goal >= 0.33)",
            extra={
                "views": views,
                "duckdb_views": duck["views"],
                "expected_views": sum(sample.expected_views.values()),
                "duckdb_seconds": round(duck_s, 2),
                "spark_jobs": result.spark_jobs,
                "driver_heap_in_use_mb": round(heap_mb),
                "heap_vs_smallest_day": round(heap_mb / first, 2) if first else None,
                "python_worker_peak_mb": round(mem.worker_mb),
            },
        ),
        BenchRow(
            f"extract {n // 1000:,}k: {label}, Spark typed reader + day filter",
            typed_rows,
            typed,
            ratio=duck_s / typed,
            ratio_label="x DuckDB (no validation, no counts, no dedup)",
        ),
    ]


def _ours(spark, cfg: EventsConfig, s3=None):
    result = read_day_events(spark, cfg, DAY, run_id="bench", now=NOW, s3=s3)
    views = result.result.agg({"view_count": "sum"}).first()[0]
    return result, int(views or 0)


def driver_heap_in_use_mb(spark) -> float:
    """The driver JVM's heap in use after a full GC (not its resident size, which follows -Xmx)."""
    runtime = spark._jvm.java.lang.Runtime.getRuntime()
    spark._jvm.java.lang.System.gc()
    return (runtime.totalMemory() - runtime.freeMemory()) / 2**20


def duckdb_views(root: Path, fmt: str, day: date = DAY):
    """DuckDB, 2 threads: the same files, every field as text, validated, day kept, dedup, views."""
    import duckdb

    listed = [f for folder in day_folders(str(root), day) for f in list_source_files(folder)]
    paths = [f.path[len("file:") :] for f in listed]
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET TimeZone = 'UTC'")
    fields = ("event_id", "event_type", "ts", "advertiser_id", "product_id")
    if fmt == "json":
        text = "{" + ", ".join(f"{f}: 'VARCHAR'" for f in fields) + "}"
        source = f"read_json(?, format = 'newline_delimited', columns = {text}, compression = 'gzip')"
    else:
        casts = ", ".join(f"CAST({f} AS VARCHAR) AS {f}" for f in fields)
        source = f"(SELECT {casts} FROM read_parquet(?))"
    start = f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"
    end = f"TIMESTAMPTZ '{(day + timedelta(days=1)).isoformat()} 00:00:00+00'"
    sql = f"""
    WITH typed AS (
      SELECT event_id, event_type, product_id,
             CASE WHEN regexp_full_match(advertiser_id, '[0-9]{{1,19}}')
                  THEN TRY_CAST(advertiser_id AS BIGINT) END AS advertiser_id,
             CASE WHEN regexp_full_match(ts, '[0-9]{{12,13}}') THEN make_timestamp(CAST(ts AS BIGINT) * 1000)
                  ELSE TRY_CAST(ts AS TIMESTAMPTZ) END AS ts
      FROM {source}),
    valid AS (
      SELECT * FROM typed
      WHERE event_id <> '' AND event_type <> '' AND product_id <> '' AND advertiser_id > 0
        AND ts >= {start} AND ts < {end}),
    distinct_events AS (
      SELECT min({{'ts': ts, 't': event_type, 'a': advertiser_id, 'p': product_id}}) AS e
      FROM valid GROUP BY event_id),
    per_key AS (
      SELECT e.a, e.p, count(*) FILTER (WHERE e.t = 'product_view') AS views
      FROM distinct_events GROUP BY e.a, e.p)
    SELECT count(*) FILTER (WHERE views > 0), sum(views) FROM per_key
    """
    keys, views = con.execute(sql, [paths]).fetchone()
    con.close()
    return int(views or 0), {"keys": int(keys), "views": int(views or 0)}


def _spark_typed(spark, root: Path, fmt: str) -> int:
    from pyspark.sql import functions as F

    paths = [f.path for folder in day_folders(str(root), DAY) for f in list_source_files(folder)]
    reader = spark.read.schema(PEER_SCHEMA)
    frame = reader.parquet(*paths) if fmt == "parquet" else reader.json(paths)
    ts = F.coalesce(F.timestamp_millis(F.col("ts").cast("bigint")), F.col("ts").cast("timestamp"))
    start = F.lit(f"{DAY.isoformat()}T00:00:00Z").cast("timestamp")
    end = F.lit(f"{(DAY + timedelta(days=1)).isoformat()}T00:00:00Z").cast("timestamp")
    # Every column is used, as the pipeline will: a bare count would let Spark parse only `ts`.
    day_rows = frame.where((ts >= start) & (ts < end))
    row = day_rows.select(F.count(F.lit(1)).alias("n"), F.sum(F.hash(*day_rows.columns)).alias("h")).first()
    return row["n"]


def _warm_up(spark, root: Path, fmt: str) -> None:
    """A small day first, so the JVM's JIT and the Python workers are warm for every contender."""
    write_day(root, DAY, SampleSpec(events=20_000), fmt=fmt, files=2)
    _ours(spark, EventsConfig(path=str(root), format=fmt))[0].release()
    _spark_typed(spark, root, fmt)
    duckdb_views(root, fmt)
    shutil.rmtree(root, ignore_errors=True)


def _start_spark():
    from spark_app.session import build_session

    return build_session(
        SparkConfig(
            master="local[2]",
            app_name="bench-extract",
            conf={
                "spark.sql.shuffle.partitions": "2",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": "4g",
            },
        )
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
