"""Presto source: the day's product views per (advertiser_id, product_id), counted by Presto.

Two modes (`presto.mode`):

- `driver`: the driver runs one query and streams the result in pages of `page_size` rows;
  each page becomes one Parquet file in a staging folder, so the driver holds one page at
  a time however large the result is. Spark then reads the folder.
- `parallel`: the query is split into `buckets` disjoint hash buckets of the key, and each
  bucket runs on an executor (`mapInArrow`), so no row passes through the driver. The
  executors write the staging folder.

Either way the result is staged as Parquet before `read_presto_views` returns: every later
action reads the same rows (no second trip to Presto on re-evaluation or task retry), and
every Presto failure surfaces here as a `SourceError`, before any sink has written.

Transient answers (`NO_NODES_AVAILABLE`, `SERVER_STARTING_UP`, HTTP 502/503/504, a refused
connection) are retried with backoff (`presto.retry_*`, spark_app/presto/retry.py), in both
modes: the driver's query and probe, and each bucket's query on its executor. Only a query
that has not yet handed over a row is run again, so no row is ever staged twice.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager, suppress
from datetime import date
from typing import Any, Callable, Iterator, List, Optional

from spark_app.config import PrestoConfig
from spark_app.errors import ConfigError, SourceError
from spark_app.presto.query import (
    PrestoEndpoint,
    check_result_columns,
    connect,
    describe_failure,
    endpoint_from_config,
    forget_statement_protocol,
    schema_probe,
    table_name,
    views_query,
)
from spark_app.presto.retry import run_with_retries

log = logging.getLogger(__name__)

PageHook = Callable[[int, int], None]  # (page number from 1, rows in the page)
_MARKER = "@@PRESTO_SOURCE_ERROR@@"  # brackets an executor's error message inside Spark's exception


def views_schema():
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType(
        [
            StructField("advertiser_id", LongType(), False),
            StructField("product_id", StringType(), False),
            StructField("view_count", LongType(), False),
        ]
    )


def _arrow_schema():
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("advertiser_id", pa.int64(), False),
            pa.field("product_id", pa.string(), False),
            pa.field("view_count", pa.int64(), False),
        ]
    )


def read_presto_views(spark, cfg: PrestoConfig, day: date, on_page: Optional[PageHook] = None):
    """DataFrame (advertiser_id long, product_id string, view_count long) of `day`'s product views.

    `on_page` is called after each page the driver stages (driver mode only), e.g. to watch
    the memory bound. Raises SourceError when Presto is unreachable, refuses the credentials,
    fails the query or returns columns of the wrong shape; ConfigError for bad settings.
    """
    if cfg.page_size < 1:
        raise ConfigError(f"presto.page_size: must be at least 1, got {cfg.page_size}")
    ep = endpoint_from_config(cfg)
    staging = _staging_path(spark, cfg, day)
    what = f"reading {table_name(cfg)} for {day.isoformat()}"
    log.info("Presto %s mode: %s from %s, staging in %s", cfg.mode, what, ep.address, staging)
    if cfg.mode == "parallel":
        _stage_from_executors(spark, ep, cfg, day, staging, what)
    else:
        pages = _stage_from_driver(ep, cfg, day, staging, what, on_page)
        log.info("Presto result staged in %d page(s) of at most %d rows", pages, cfg.page_size)
    return spark.read.schema(views_schema()).parquet(staging).repartition(target_partitions(spark, cfg))


def target_partitions(spark, cfg: PrestoConfig) -> int:
    """`presto.partitions`, else executors x 4 on a cluster, else the default parallelism."""
    if cfg.partitions:
        return cfg.partitions
    sc = spark.sparkContext
    instances = sc.getConf().get("spark.executor.instances")
    if not sc.master.startswith("local") and instances and int(instances) > 0:
        return int(instances) * 4
    return sc.defaultParallelism


# --------------------------------------------------------------------------- staging


def _staging_path(spark, cfg: PrestoConfig, day: date) -> str:
    """A fresh folder per run: `<staging_dir>/day=D/run-<id>` (a temp dir on a local master)."""
    run = f"day={day.isoformat()}/run-{uuid.uuid4().hex[:12]}"
    if cfg.staging_dir:
        root = cfg.staging_dir if "://" in cfg.staging_dir else os.path.abspath(cfg.staging_dir)
        return f"{root.rstrip('/')}/{run}"
    sc = spark.sparkContext
    if not sc.master.startswith("local"):
        raise ConfigError(
            "presto.staging_dir: required on a cluster (an s3:// or hdfs:// path every executor "
            "can read); the driver's temp folder is not visible to the executors"
        )
    local_dir = sc.getConf().get("spark.local.dir") or None
    root = tempfile.mkdtemp(prefix="presto-staging-", dir=local_dir.split(",")[0] if local_dir else None)
    atexit.register(shutil.rmtree, root, True)
    return f"{root}/{run}"


def _stage_from_driver(
    ep: PrestoEndpoint, cfg: PrestoConfig, day: date, staging: str, what: str, on_page: Optional[PageHook]
) -> int:
    """Run the query on the driver and write each fetched page as one Parquet file; pages written."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    sql, params = views_query(cfg, day)
    fs, root = pafs.FileSystem.from_uri(staging)
    fs.create_dir(root, recursive=True)
    pages = 0
    try:
        for rows in query_pages(ep, sql, params, cfg.page_size, what):
            pages += 1
            pq.write_table(_page_table(rows), f"{root}/page-{pages:06d}.parquet", filesystem=fs)
            if on_page:
                on_page(pages, len(rows))
            del rows
    except SourceError:
        _discard(fs, root)
        raise
    except Exception as exc:  # writing a page failed
        _discard(fs, root)
        raise SourceError(describe_failure(exc, ep, what)) from None
    return pages


def _page_table(rows: List[Any]):
    import pyarrow as pa

    advertiser_ids, product_ids, counts = zip(*rows)
    return pa.Table.from_arrays(
        [
            pa.array(advertiser_ids, pa.int64()),
            pa.array(product_ids, pa.string()),
            pa.array(counts, pa.int64()),
        ],
        schema=_arrow_schema(),
    )


def _discard(fs, root: str) -> None:
    with suppress(Exception):
        fs.delete_dir(root)


# --------------------------------------------------------------------------- parallel mode


def _stage_from_executors(
    spark, ep: PrestoEndpoint, cfg: PrestoConfig, day: date, staging: str, what: str
) -> None:
    """Probe the query from the driver (fast, clear errors), then run one bucket per task."""
    sql, params = views_query(cfg, day, buckets=cfg.buckets)
    _probe(ep, schema_probe(sql), params + [0], what)
    fetch = functools.partial(fetch_buckets, ep, sql, params, cfg.buckets, cfg.page_size)
    buckets = spark.range(0, cfg.buckets, 1, numPartitions=cfg.buckets)
    try:
        buckets.mapInArrow(fetch, views_schema()).write.mode("overwrite").parquet(staging)
    except Exception as exc:
        raise SourceError(_executor_failure(exc, ep, what)) from None


def _probe(ep: PrestoEndpoint, sql: str, params: List[Any], what: str) -> None:
    def attempt() -> None:
        with _closing(connect(ep)) as conn:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            cursor.fetchall()
            check_result_columns(cursor.description, f"Presto at {ep.address}, {what}")

    _retrying(ep, what, attempt)


def _retrying(ep: PrestoEndpoint, what: str, attempt):
    """attempt() with the endpoint's retry policy; failures described as every SourceError here."""
    return run_with_retries(
        attempt, ep.retry, f"at {ep.address}, {what}", lambda exc: describe_failure(exc, ep, what),
        before_retry=lambda: forget_statement_protocol(ep),
    )


def fetch_buckets(ep: PrestoEndpoint, sql: str, params: List[Any], buckets: int, page_size: int, batches):
    """mapInArrow body (runs on executors): for each bucket id in the input, stream its rows.

    Opens its own connection per bucket; the endpoint, secrets included, arrives in the task
    closure. Errors leave as RuntimeError whose message the driver turns back into a SourceError.
    """
    for batch in batches:
        for bucket in batch.column(0).to_pylist():
            yield from _bucket_batches(ep, sql, list(params) + [int(bucket)], bucket, buckets, page_size)


def _bucket_batches(
    ep: PrestoEndpoint, sql: str, params: List[Any], bucket: int, buckets: int, page_size: int
):
    what = f"bucket {bucket} of {buckets}"
    try:
        for rows in query_pages(ep, sql, params, page_size, what):
            yield from _page_table(rows).to_batches()
    except SourceError as exc:
        raise RuntimeError(f"{_MARKER}{exc}{_MARKER}") from None
    except Exception as exc:
        raise RuntimeError(f"{_MARKER}{describe_failure(exc, ep, what)}{_MARKER}") from None


def _executor_failure(exc: BaseException, ep: PrestoEndpoint, what: str) -> str:
    found = re.search(f"{_MARKER}(.*?){_MARKER}", str(exc), re.S)
    if found:
        return found.group(1)
    return describe_failure(exc, ep, what)


def query_pages(ep: PrestoEndpoint, sql: str, params: List[Any], page_size: int, what: str):
    """The result of one query, `page_size` rows at a time, on a connection of its own.

    The result's columns are checked before the first page; any failure of the query is a
    SourceError naming `what` (the day, or a bucket) and the probable cause. A transient
    failure (spark_app/presto/retry.py) is retried as `ep.retry` allows, by running the whole
    query again, until its first page is in hand: once a row has left this generator a failure
    is final (a second run would hand those rows over twice).
    """

    def first_page():
        conn = connect(ep)
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            check_result_columns(cursor.description, f"Presto at {ep.address}, {what}")
            return conn, cursor, cursor.fetchmany(page_size)
        except BaseException:
            with suppress(Exception):
                conn.close()
            raise

    conn, cursor, rows = _retrying(ep, what, first_page)
    try:
        if rows:
            yield rows
            yield from iter_pages(cursor, page_size)
    except SourceError:
        raise
    except Exception as exc:  # the trino client raises several unrelated types
        raise SourceError(describe_failure(exc, ep, what)) from None
    finally:
        with suppress(Exception):
            conn.close()


@contextmanager
def _closing(conn):
    try:
        yield conn
    finally:
        with suppress(Exception):
            conn.close()


def iter_pages(cursor, page_size: int) -> Iterator[List[Any]]:
    """The cursor's remaining rows, `page_size` at a time."""
    while True:
        rows = cursor.fetchmany(page_size)
        if not rows:
            return
        yield rows
