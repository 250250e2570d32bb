"""DynamoDB enrichment: our Spark stage against the per-row way and against a plain Python loop.

ctx.scaled(200_000) input rows over ctx.scaled(50_000) distinct keys (every key at least once,
the rest drawn at random), 80% of the keys in the catalog, all on one moto server. The input is
hash-partitioned by key, as it is in the job (it comes out of a groupBy), so every key lives in
one partition. Four measurements:

- ours: `enrich_with_catalog` (mapInArrow) on Spark local[2], `.count()` of the result;
- ours through mapInPandas: the same lookup, to keep the faster adapter;
- the limit: a plain Python loop of BatchGetItem calls (the same lookup class, no Spark) with
  the same number of requests in flight (2 tasks x threads);
- the old way: one GetItem per row with one request in flight per task (2), timed on a sample
  and scaled to all rows.

Ratios: ours over the plain loop (goal >= 0.9) and over the per-row way (goal >= 8).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from bench.common import BenchContext, BenchRow, PeakMemory, timed
from spark_app.config import DynamoConfig, SparkConfig
from spark_app.dynamo.catalog import create_catalog_table
from spark_app.dynamo.counters import LocalTally, LookupCounters
from spark_app.dynamo.enrich import enrich_with_catalog
from spark_app.dynamo.lookup import CatalogLookup

ROWS = 200_000
KEYS = 50_000
CATALOG_SHARE = 0.8
ADVERTISERS = 20
TASKS = 2  # local[2]
PER_ROW_SAMPLE = 4_000  # GetItem calls actually made; the rest is scaled
REPEATS = 2  # interleaved runs of each contender; the best counts
ADAPTER_ROWS = 2_000_000  # rows through each adapter with no lookups: the adapter's own cost
NOTE: Optional[str] = None

Key = Tuple[int, str]


def run(ctx: BenchContext) -> List[BenchRow]:
    own_moto = ctx.moto is None
    moto = ctx.moto or _start_moto()
    own_spark = ctx.spark is None
    spark = ctx.spark or _start_spark()
    try:
        return _measure(ctx, moto.endpoint_url, spark)
    finally:
        if own_spark:
            spark.stop()
        if own_moto:
            moto.stop()


def _measure(ctx: BenchContext, endpoint: str, spark) -> List[BenchRow]:
    n_rows, n_keys = ctx.scaled(ROWS), ctx.scaled(KEYS)
    keys = [(1 + i % ADVERTISERS, f"sku-{i:08d}") for i in range(n_keys)]
    rows = keys + [random.Random(7).choice(keys) for _ in range(n_rows - n_keys)]
    random.Random(11).shuffle(rows)
    table = f"bench_catalog_{uuid.uuid4().hex[:6]}"
    present = _load_catalog(endpoint, table, keys)
    cfg = DynamoConfig(table=table, region="us-east-1", endpoint_url=endpoint)
    _say(f"enrich: {n_rows:,} rows, {n_keys:,} keys, {present:,} in {table}; threads={cfg.threads}")

    _spark_stage(spark, cfg, rows[:2_000], "arrow")  # warm-up: JVM, Python workers, moto
    runs = {"arrow": [], "pandas": [], "loop": []}
    for _ in range(REPEATS):  # interleaved, best of each: the machine is shared and noisy
        runs["arrow"].append(_spark_stage(spark, cfg, rows, "arrow"))
        runs["pandas"].append(_spark_stage(spark, cfg, rows, "pandas"))
        runs["loop"].append(_plain_loop(cfg, rows))
    arrow, pandas, loop = (min(runs[k], key=lambda r: r["seconds"]) for k in ("arrow", "pandas", "loop"))
    loop_seconds, loop_counts, loop_matched = loop["seconds"], loop["counts"], loop["matched"]
    adapter = {
        engine: _adapter_cost(spark, cfg, ctx.scaled(ADAPTER_ROWS), engine) for engine in ("pandas", "arrow")
    }
    per_row_seconds, sample = _per_row(endpoint, table, rows)
    if {r["matched"] for rs in runs.values() for r in rs} != {loop_matched}:
        raise RuntimeError(f"matched rows differ between runs: {runs}")

    def extra(counts, seconds, name):
        return {
            "runs_seconds": [round(r["seconds"], 2) for r in runs[name]],
            "requests": int(counts["requests"]),
            "requests_per_row": round(counts["requests"] / n_rows, 5),
            "requests_per_distinct_key": round(counts["requests"] / n_keys, 5),
            "keys_per_s": round(n_keys / seconds),
            "unprocessed_retried": int(counts["unprocessed_retried"]),
            "throttles": int(counts["throttles"]),
            "matched_rows": loop_matched,
        }

    return [
        BenchRow(
            "enrich: BatchGetItem via mapInArrow (ours)",
            n_rows,
            arrow["seconds"],
            arrow["driver_mb"],
            arrow["worker_mb"],
            ratio=loop_seconds / arrow["seconds"],
            ratio_label="x plain BatchGetItem loop (goal >= 0.9)",
            extra=extra(arrow["counts"], arrow["seconds"], "arrow"),
        ),
        BenchRow(
            "enrich: same, per-row way as peer",
            n_rows,
            arrow["seconds"],
            ratio=per_row_seconds / arrow["seconds"],
            ratio_label="x GetItem per row (goal >= 8)",
        ),
        BenchRow(
            "enrich: BatchGetItem via mapInPandas",
            n_rows,
            pandas["seconds"],
            pandas["driver_mb"],
            pandas["worker_mb"],
            ratio=pandas["seconds"] / arrow["seconds"],
            ratio_label="x slower than mapInArrow (> 1: Arrow wins)",
            extra=extra(pandas["counts"], pandas["seconds"], "pandas"),
        ),
        BenchRow(
            "enrich: mapInArrow adapter alone, no lookups",
            ctx.scaled(ADAPTER_ROWS),
            adapter["arrow"],
            ratio=adapter["pandas"] / adapter["arrow"],
            ratio_label="x mapInPandas adapter alone (> 1: Arrow wins)",
            extra={"pandas_seconds": round(adapter["pandas"], 2)},
        ),
        BenchRow(
            f"enrich: plain BatchGetItem loop, {TASKS * cfg.threads} in flight (limit)",
            n_rows,
            loop_seconds,
            extra=dict(
                extra(loop_counts, loop_seconds, "loop"),
                client_cpu_ms_per_request=round(loop["client_cpu_ms_per_request"], 2),
            ),
        ),
        BenchRow(
            f"enrich: GetItem per row, {TASKS} in flight (scaled from {sample:,})",
            n_rows,
            per_row_seconds,
            extra={"requests_per_row": 1.0, "sampled_rows": sample},
        ),
    ]


# --------------------------------------------------------------------------- the contenders


def _spark_stage(spark, cfg: DynamoConfig, rows: List[Key], engine: str) -> dict:
    """Time `.count()` of the enriched input; the input itself is built and cached untimed."""
    df = spark.createDataFrame(rows, "advertiser_id long, product_id string")
    df = df.repartition(TASKS, "advertiser_id", "product_id").persist()
    df.count()
    counters = LookupCounters(spark.sparkContext)
    enriched = enrich_with_catalog(df, cfg, counters, engine=engine).persist()
    with PeakMemory() as mem:
        _, seconds = timed(enriched.count)
    matched = enriched.filter("matched").count()
    enriched.unpersist()
    df.unpersist()
    _say(f"enrich: {engine} {seconds:.2f} s, {counters.snapshot()}")
    return {
        "seconds": seconds,
        "counts": counters.snapshot(),
        "matched": matched,
        "driver_mb": mem.driver_mb,
        "worker_mb": mem.worker_mb,
    }


def _adapter_cost(spark, cfg: DynamoConfig, n: int, engine: str) -> float:
    """Seconds to pass `n` rows through the adapter when no key needs asking (null advertiser)."""
    df = spark.range(0, n, numPartitions=TASKS).selectExpr(
        "CAST(NULL AS BIGINT) AS advertiser_id", "concat('sku-', CAST(id AS STRING)) AS product_id"
    )
    df = df.persist()
    df.count()
    best = min(timed(enrich_with_catalog(df, cfg, engine=engine).count)[1] for _ in range(REPEATS))
    df.unpersist()
    _say(f"enrich: {engine} adapter alone {best:.2f} s for {n:,} rows")
    return best


def _plain_loop(cfg: DynamoConfig, rows: List[Key]):
    """The same requests with no Spark: de-duplicate, BatchGetItem with 2 x threads in flight."""
    import dataclasses

    loop_cfg = dataclasses.replace(cfg, threads=TASKS * cfg.threads)
    tally = LocalTally()
    start, cpu_start = time.perf_counter(), time.process_time()
    with CatalogLookup(loop_cfg, tally) as lookup:
        flags = lookup.matched([a for a, _ in rows], [p for _, p in rows])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    counts = tally.snapshot()
    cpu_ms = 1000 * cpu / max(1, counts["requests"])  # moto is another process: this is the client's
    _say(f"enrich: plain loop {seconds:.2f} s, client CPU {cpu_ms:.1f} ms per request, {counts}")
    return {"seconds": seconds, "counts": counts, "matched": sum(flags), "client_cpu_ms_per_request": cpu_ms}


def _per_row(endpoint: str, table: str, rows: List[Key]):
    """GetItem per row, one call in flight per task; a sample, scaled linearly to all rows."""
    import boto3

    sample = rows[: min(len(rows), PER_ROW_SAMPLE)]
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")

    def one_task(part: List[Key]) -> int:
        hits = 0
        for a, p in part:
            item = client.get_item(
                TableName=table, Key={"advertiser_id": {"N": str(a)}, "product_id": {"S": p}}
            )
            hits += "Item" in item
        return hits

    start = time.perf_counter()
    with ThreadPoolExecutor(TASKS) as pool:
        list(pool.map(one_task, [sample[i::TASKS] for i in range(TASKS)]))
    seconds = (time.perf_counter() - start) * len(rows) / len(sample)
    _say(f"enrich: per-row GetItem {seconds:.1f} s for {len(rows):,} rows (scaled from {len(sample):,})")
    return seconds, len(sample)


# --------------------------------------------------------------------------- setup


def _load_catalog(endpoint: str, table: str, keys: List[Key]) -> int:
    """Create the table and BatchWriteItem 80% of the keys into it."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    create_catalog_table(client, table)
    rng = random.Random(3)
    chosen = [k for k in keys if rng.random() < CATALOG_SHARE]
    table_res = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1").Table(table)
    start = time.perf_counter()
    with table_res.batch_writer() as writer:
        for a, p in chosen:
            writer.put_item(Item={"advertiser_id": a, "product_id": p, "title": f"product {p}"})
    _say(f"enrich: loaded {len(chosen):,} catalog items in {time.perf_counter() - start:.1f} s")
    return len(chosen)


def _start_moto():
    from spark_app.local.servers import LocalMoto, free_port
    from spark_app.session import fake_aws_credentials

    fake_aws_credentials()
    return LocalMoto(free_port()).start()


def _start_spark(app_name: str = "bench-enrich"):
    from spark_app.session import build_session

    return build_session(
        SparkConfig(
            master="local[2]",
            app_name=app_name,
            conf={"spark.sql.shuffle.partitions": "2", "spark.ui.showConsoleProgress": "false"},
        )
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
