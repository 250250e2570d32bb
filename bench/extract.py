"""Event-log extraction: one day of ctx.scaled(2_000_000) events, gzipped JSON lines and Parquet.

The day is written by `spark_app.local.sample_data.write_day` (8 files per folder, dt=D complete,
dt=D+1 partial). Measured on Spark local[2], each after a warm-up read of a small day:

- ours, gzip JSON: `read_day_events` (gzip integrity check, parse every field as text,
  validate, one counting aggregation over the persisted records) plus `events.count()`;
- the peer: Spark's own JSON (or Parquet) reader with an explicit schema, `ts` parsed as ISO
  text or epoch milliseconds, keeping the day's rows, counting them and hashing every column
  (so no column is pruned away): no validation, no reasons, no quarantine, no corrupt-file
  names;
- the gzip integrity check alone (`find_corrupt_gzip`), as a share of our extract time;
- ours and the peer again on the same day written as Parquet;
- ours on the same gzip JSON day uploaded to moto's S3 (the bench's moto server), read through
  S3A and boto3 exactly as the job reads `s3://` locally.

Ratios: peer seconds / our seconds (> 1 would mean ours is faster); the price of validating
every record and naming bad files is what the ratio shows below 1. The S3 row's ratio is its
time over the local-file time: the cost of the S3 path through a local emulator (HTTP, S3A's
requests, moto's Python server), not the cost of S3 itself.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import List

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.config import EventsConfig, S3Config, SparkConfig
from spark_app.events.files import day_folders, find_corrupt_gzip, list_data_files, s3_client
from spark_app.events.read import read_day_events
from spark_app.local.s3_upload import ensure_bucket, upload_tree
from spark_app.local.sample_data import SampleSpec, write_day

EVENTS = 2_000_000
FILES = 8
DAY = date(2024, 3, 10)
# ts as text: the day mixes ISO-8601 strings and epoch milliseconds, which no single type reads.
PEER_SCHEMA = "event_id string, event_type string, ts string, advertiser_id bigint, product_id string"
BUCKET = "bench-extract"


def run(ctx: BenchContext) -> List[BenchRow]:
    own_spark = ctx.spark is None
    spark = ctx.spark or _start_spark(_s3(ctx))
    try:
        return _measure(ctx, spark)
    finally:
        if own_spark:
            spark.stop()


def _measure(ctx: BenchContext, spark) -> List[BenchRow]:
    n = ctx.scaled(EVENTS)
    rows: List[BenchRow] = []
    for fmt in ("json", "parquet"):
        root = ctx.work_dir / f"extract-{fmt}"
        _say(f"extract: writing {n:,} events as {fmt} under {root}")
        sample, seconds = timed(write_day, root, DAY, SampleSpec(events=n), fmt=fmt, files=FILES)
        mb = sum(p.stat().st_size for p in sample.files) / 2**20
        _say(f"extract: written in {seconds:.1f}s ({mb:.0f} MB)")
        _warm_up(spark, ctx.work_dir / f"warm-{fmt}", fmt)
        rows += _measure_format(spark, root, fmt, sample.counts)
        if fmt == "json" and _s3(ctx) is not None:
            rows.append(_measure_s3(ctx, spark, root, rows[0]))
        shutil.rmtree(root, ignore_errors=True)
    return rows


def _s3(ctx: BenchContext):
    """moto's S3 of the bench run (None when the module runs without the bench's servers)."""
    return S3Config(endpoint_url=ctx.moto.endpoint_url, path_style_access=True) if ctx.moto else None


def _measure_s3(ctx: BenchContext, spark, root: Path, local_row: BenchRow) -> BenchRow:
    """The same gzip JSON day from moto's S3 (after a warm-up read of a small day there)."""
    s3 = _s3(ctx)
    client = s3_client(s3)
    ensure_bucket(client, BUCKET)
    warm = ctx.work_dir / "warm-s3"
    write_day(warm, DAY, SampleSpec(events=20_000), files=2)
    upload_tree(client, warm, f"s3://{BUCKET}/warm")
    shutil.rmtree(warm, ignore_errors=True)
    read_day_events(spark, EventsConfig(path=f"s3://{BUCKET}/warm"), DAY, run_id="warm", s3=s3).release()
    _, upload = timed(upload_tree, client, root, f"s3://{BUCKET}/events")
    cfg = EventsConfig(path=f"s3://{BUCKET}/events")
    with PeakMemory() as mem:
        (result, in_day), seconds = timed(_ours, spark, cfg, s3)
    lines = result.counts["lines_read"]
    _say(f"extract: ours gzip JSON from moto S3: {lines:,} lines in {seconds:.1f}s, {result.counts}")
    result.release()
    return BenchRow(
        "extract: gzip JSON from moto S3 (S3A + boto3), validated + counted",
        lines,
        seconds,
        driver_peak_mb=mem.driver_mb,
        worker_peak_mb=mem.worker_mb or None,
        ratio=seconds / local_row.seconds,
        ratio_label="x the same day from local files (S3 path through a local emulator)",
        extra={
            "in_day": in_day,
            "local_in_day": local_row.extra["in_day"],
            "local_seconds": round(local_row.seconds, 2),
            "upload_seconds": round(upload, 2),
        },
    )


def _measure_format(spark, root: Path, fmt: str, truth) -> List[BenchRow]:
    cfg = EventsConfig(path=str(root), format=fmt)
    label = "gzip JSON" if fmt == "json" else "Parquet"

    with PeakMemory() as mem:
        (result, in_day), ours = timed(_ours, spark, cfg)
    lines = result.counts["lines_read"]
    _say(f"extract: ours {label}: {lines:,} lines in {ours:.1f}s, {result.spark_jobs} jobs, {result.counts}")
    peer_rows, peer = timed(_peer, spark, root, fmt)
    rows = [
        BenchRow(
            f"extract: {label}, validated + counted (ours)",
            lines,
            ours,
            driver_peak_mb=mem.driver_mb,
            worker_peak_mb=mem.worker_mb or None,
            ratio=peer / ours,
            ratio_label="x Spark typed reader + day filter, no validation",
            extra={
                "in_day": in_day,
                "expected_in_day": truth["events"] + truth["duplicate_lines"],
                "spark_jobs": result.spark_jobs,
                "peer_seconds": round(peer, 2),
                "peer_in_day": peer_rows,
                "python_driver_mb": round(mem.python_driver_mb),
            },
        )
    ]
    result.release()
    if fmt == "json":
        files = [f for folder in day_folders(str(root), DAY) for f in list_data_files(spark, folder)]
        _, check = timed(find_corrupt_gzip, spark, files)
        rows.append(
            BenchRow(
                "extract: gzip integrity check alone",
                lines,
                check,
                ratio=check / ours,
                ratio_label="of our gzip JSON extract time",
                extra={"files": len(files), "mb": round(sum(f.size for f in files) / 2**20, 1)},
            )
        )
    return rows


def _ours(spark, cfg: EventsConfig, s3=None):
    result = read_day_events(spark, cfg, DAY, run_id="bench", s3=s3)
    return result, result.events.count()


def _peer(spark, root: Path, fmt: str) -> int:
    from pyspark.sql import functions as F

    paths = [f.path for folder in day_folders(str(root), DAY) for f in list_data_files(spark, folder)]
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
    """A small day first, so the JVM's JIT and the Python workers are warm for both contenders."""
    write_day(root, DAY, SampleSpec(events=20_000), fmt=fmt, files=2)
    read_day_events(spark, EventsConfig(path=str(root), format=fmt), DAY, run_id="warm").release()
    _peer(spark, root, fmt)
    shutil.rmtree(root, ignore_errors=True)


def _start_spark(s3=None):
    from spark_app.session import build_session

    return build_session(
        s3=s3,
        cfg=SparkConfig(
            master="local[2]",
            app_name="bench-extract",
            conf={
                "spark.sql.shuffle.partitions": "2",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": "4g",
            },
        ),
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
