"""PostgreSQL load: our stage+publish against Spark's JDBC writer, the ORM, and a single-client COPY.

ctx.scaled(1_000_000) detail rows of one day (4 Spark partitions on local[2]) go into
`product_views` (primary key on day, advertiser_id, product_id) on one PostgreSQL server over
TCP. Each way writes into its own fresh database, so none pays for another's rows.
`product_views` is partitioned by day: the other ways write through it into the day's empty
partition (created with its primary key before timing); ours creates that partition itself.

- ours: `DayRun.stage` (per-partition COPY into a LOGGED staging table) + `publish` (primary
  key and day CHECK on the staging table, then one transaction: attach it as the day's
  partition, journal row), timed together;
- Spark JDBC writer (the PostgreSQL JDBC driver of requirements/pom.xml, fetched by `make jars`):
  batchsize 10000, reWriteBatchedInserts=true, same 4 partitions. It needs its jar on the class
  path at JVM start, so it runs in a child process (`python -m bench.load --jdbc ...`) with its
  own SparkSession; only the write is timed there;
- the ORM way: one `session.add` per row, ctx.scaled(50_000) rows, one commit;
- the limit: one client COPYing the same rows from a prepared CSV file straight into the table.

Also the CSV formatting inside the task: Arrow's C++ CSV writer against Python string
formatting of the same batches (the loader uses the faster one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import List, Optional

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.jvm import jar_for

ROWS = 1_000_000
ORM_ROWS = 50_000
FORMAT_ROWS = 200_000
PARTITIONS = 4
DAY = "2026-11-19"
JDBC_JAR = jar_for("postgresql-")  # from requirements/pom.xml, fetched into .jars/ by `make jars`
ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["day", "advertiser_id", "product_id", "view_count", "matched"]


def run(ctx: BenchContext) -> List[BenchRow]:
    from spark_app.local.servers import LocalPostgres, free_port

    own_pg = ctx.pg_server is None
    pg = ctx.pg_server or LocalPostgres(ctx.work_dir / "pg", free_port(), "bench").start()
    own_spark = ctx.spark is None
    spark = ctx.spark or _start_spark()
    databases: List[str] = []
    try:
        return _measure(ctx, pg, spark, databases)
    finally:
        for name in databases:
            pg.drop_database(name)
        if own_spark:
            spark.stop()
        if own_pg:
            pg.stop()


def _measure(ctx: BenchContext, pg, spark, databases: List[str]) -> List[BenchRow]:
    n, n_orm = ctx.scaled(ROWS), ctx.scaled(ORM_ROWS)

    def fresh_db(day_partition: bool = True) -> str:
        from sqlalchemy import text

        from spark_app.postgres.connect import ConnectionSpec
        from spark_app.postgres.schema import upgrade_schema

        name = f"bench_load_{uuid.uuid4().hex[:8]}"
        pg.create_database(name)
        databases.append(name)
        spec = ConnectionSpec(pg.admin_url(name))
        upgrade_schema(spec)
        if day_partition:
            engine = spec.engine()
            with engine.begin() as conn:
                conn.execute(text(f"CREATE TABLE product_views_d{DAY.replace('-', '')} PARTITION OF "
                                  f"product_views FOR VALUES IN ('{DAY}')"))
            engine.dispose()
        return pg.admin_url(name)

    _say(f"load: {n:,} rows, {PARTITIONS} partitions")
    ours = _ours(spark, fresh_db(day_partition=False), n)
    jdbc = _jdbc(fresh_db(), n)
    orm = _orm(fresh_db(), n_orm)
    limit = _copy_limit(spark, fresh_db(), n, ctx.work_dir)
    formatting = _formatting(ctx.scaled(FORMAT_ROWS))

    ours_rps = ours.rows_per_second
    ours.ratio, ours.ratio_label = ours_rps / limit.rows_per_second, "x single-client COPY (goal >= 0.6)"
    ours.extra["x_jdbc"] = round(ours_rps / jdbc.rows_per_second, 2) if jdbc.seconds > 0 else None
    ours.extra["x_orm"] = round(ours_rps / orm.rows_per_second, 1)
    jdbc.ratio, jdbc.ratio_label = ours_rps / jdbc.rows_per_second, "ours x this (goal >= 1.5)"
    orm.ratio, orm.ratio_label = ours_rps / orm.rows_per_second, "ours x this (goal >= 50)"
    limit.ratio, limit.ratio_label = ours_rps / limit.rows_per_second, "ours x this (goal >= 0.6)"
    return [ours, jdbc, orm, limit, *formatting]


# --------------------------------------------------------------------------- the four ways


def detail_frame(spark, n: int, partitions: int = PARTITIONS):
    """The benchmark's rows: one day, 1000 advertisers, unique product ids, some text to escape."""
    return spark.range(0, n, numPartitions=partitions).selectExpr(
        f"DATE'{DAY}' AS day",
        "id % 1000 AS advertiser_id",
        "concat('sku-', id, CASE WHEN id % 10 = 0 THEN ',\"x\"' ELSE '' END) AS product_id",
        "id % 97 + 1 AS view_count",
        "id % 5 != 0 AS matched",
    )


def _ours(spark, url: str, n: int) -> BenchRow:
    from spark_app.postgres.connect import ConnectionSpec
    from spark_app.postgres.publish import DayRun

    df = detail_frame(spark, n).cache()
    df.count()
    spec = ConnectionSpec(url)
    _warm_up(spark, spec)
    with PeakMemory() as mem:
        start = time.perf_counter()
        with DayRun(spec, "bench", date.fromisoformat(DAY)) as run:
            result, stage_s = timed(run.stage, df, "product_views")
            _, publish_s = timed(run.publish, n, result.rows_loaded, result.rows_rejected)
        seconds = time.perf_counter() - start
    df.unpersist()
    _say(f"load: ours {seconds:.1f} s (stage {stage_s:.1f} s, publish {publish_s:.1f} s)")
    return BenchRow(
        "load: stage+publish, COPY via Arrow (ours)",
        result.rows_loaded,
        seconds,
        driver_peak_mb=mem.driver_mb,
        worker_peak_mb=mem.worker_mb,
        extra={"stage_s": round(stage_s, 2), "publish_s": round(publish_s, 2)},
    )


def _warm_up(spark, spec) -> None:
    """Start the Python workers and their imports outside the timing, as the JDBC child warms its JVM."""
    from spark_app.postgres.publish import DayRun

    warm = detail_frame(spark, 1000).selectExpr(f"DATE'{DAY}' - 1 AS day", *COLUMNS[1:])
    with DayRun(spec, "bench-warm-up", date.fromisoformat(DAY) - timedelta(days=1)) as run:
        run.stage(warm, "product_views")
        run.publish()


def _jdbc(url: str, n: int) -> BenchRow:
    if not JDBC_JAR or not os.path.exists(JDBC_JAR):
        missing = "load: Spark JDBC writer (jar missing: run `make jars`)"
        return BenchRow(missing, n, 0.0)
    cmd = [sys.executable, "-m", "bench.load", "--jdbc", url, str(n)]
    with PeakMemory() as mem:
        proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"JDBC child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    seconds = json.loads(lines[-1])["seconds"]
    _say(f"load: Spark JDBC {seconds:.1f} s")
    return BenchRow(
        "load: Spark JDBC writer (batch 10000, rewrite)", n, seconds, driver_peak_mb=mem.driver_mb,
        worker_peak_mb=mem.worker_mb,
    )


def _orm(url: str, n: int) -> BenchRow:
    from sqlalchemy import BigInteger, Boolean, Column, Date, Text
    from sqlalchemy.orm import Session, declarative_base

    from spark_app.postgres.connect import ConnectionSpec

    base = declarative_base()

    class ProductView(base):  # noqa: F841 - the mapped class is the point
        __tablename__ = "product_views"
        day = Column(Date, primary_key=True)
        advertiser_id = Column(BigInteger, primary_key=True)
        product_id = Column(Text, primary_key=True)
        view_count = Column(BigInteger)
        matched = Column(Boolean)

    day = date.fromisoformat(DAY)
    engine = ConnectionSpec(url).engine()
    start = time.perf_counter()
    with Session(engine) as session:
        for i in range(n):
            session.add(ProductView(day=day, advertiser_id=i % 1000, product_id=f"sku-{i}",
                                    view_count=i % 97 + 1, matched=i % 5 != 0))
        session.commit()
    seconds = time.perf_counter() - start
    engine.dispose()
    _say(f"load: ORM {n:,} rows in {seconds:.1f} s")
    return BenchRow("load: ORM, one session.add per row", n, seconds)


def _copy_limit(spark, url: str, n: int, work_dir: Path) -> BenchRow:
    import psycopg2

    csv_path = work_dir / "detail.csv"
    detail_frame(spark, n).toPandas().to_csv(csv_path, header=False, index=False)
    conn = psycopg2.connect(url)
    start = time.perf_counter()
    with conn, conn.cursor() as cur, open(csv_path, "rb") as f:
        cur.copy_expert(f"COPY product_views ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)", f, size=1 << 18)
    seconds = time.perf_counter() - start
    conn.close()
    csv_path.unlink()
    _say(f"load: single-client COPY {seconds:.1f} s")
    return BenchRow("load: limit, one client COPY from a CSV file", n, seconds)


def _formatting(n: int) -> List[BenchRow]:
    """Arrow CSV writer vs Python formatting, on the same 10000-row batches (no database)."""
    import pyarrow as pa

    from spark_app.postgres.load import format_arrow, format_python

    ids = list(range(10_000))
    batch = pa.RecordBatch.from_pydict(
        {
            "day": pa.array([date.fromisoformat(DAY)] * len(ids), pa.date32()),
            "advertiser_id": pa.array([i % 1000 for i in ids], pa.int64()),
            "product_id": pa.array([f"sku-{i}" + (',"x"' if i % 10 == 0 else "") for i in ids]),
            "view_count": pa.array([i % 97 + 1 for i in ids], pa.int64()),
            "matched": pa.array([i % 5 != 0 for i in ids]),
        }
    )
    batches = max(1, n // batch.num_rows)
    _, arrow_s = timed(lambda: [format_arrow(batch, 0) for _ in range(batches)])
    _, python_s = timed(lambda: [format_python(batch, 0) for _ in range(batches)])
    rows = batches * batch.num_rows
    return [
        BenchRow("load: CSV formatting, Arrow writer (used)", rows, arrow_s, ratio=python_s / arrow_s,
                 ratio_label="x Python formatting"),
        BenchRow("load: CSV formatting, Python strings", rows, python_s),
    ]


# --------------------------------------------------------------------------- JDBC child


def _jdbc_main(url: str, n: int) -> None:
    """In a fresh process: a SparkSession with the PostgreSQL JDBC jar, time one JDBC write."""
    from sqlalchemy.engine import make_url

    from spark_app.config import SparkConfig
    from spark_app.session import build_session

    spark = build_session(
        SparkConfig(master="local[2]", app_name="bench-jdbc"),  # local sessions get .jars/ on the class path
    )
    df = detail_frame(spark, n).cache()
    df.count()
    u = make_url(url)
    start = time.perf_counter()
    (
        df.write.format("jdbc")
        .option("url", f"jdbc:postgresql://{u.host}:{u.port}/{u.database}")
        .option("dbtable", "public.product_views")
        .option("user", u.username or "postgres")
        .option("driver", "org.postgresql.Driver")
        .option("batchsize", 10000)
        .option("reWriteBatchedInserts", "true")
        .mode("append")
        .save()
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds}), flush=True)
    spark.stop()


def _start_spark():
    from spark_app.config import SparkConfig
    from spark_app.session import build_session

    return build_session(SparkConfig(master="local[2]", app_name="bench-load"))


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--jdbc"]:
        _jdbc_main(args[1], int(args[2]))


if __name__ == "__main__":
    _main()
