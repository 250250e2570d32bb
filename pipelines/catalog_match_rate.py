"""The daily catalog match rate: how well each advertiser's catalog covers what users view.

extract   product views of day D per (advertiser_id, product_id), from event logs or Presto
enrich    matched = the DynamoDB catalog holds the key (one batched pass, persisted)
load      detail rows and the per-advertiser aggregate into run-scoped staging in PostgreSQL
quality   Deequ-style checks on both tables; an Error stops the run before publishing
publish   one transaction replaces the day in both tables and records the run

The transforms (`detail_rows`, `aggregate_match_rates`) are pure DataFrame-to-DataFrame
functions, tested alone. Distinct events and views per key come from the event-log read itself
(`spark_app.events.views`: dedup by event_id in Arrow, in the reading pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Dict, List, Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_app.config import Config
from spark_app.errors import PipelineError, QualityGateFailed, translate_task_errors
from spark_app.progress import Progress, step

NAME = "catalog_match_rate"
DETAIL_TABLE = "product_views"
AGGREGATE_TABLE = "advertiser_match_rates"


# --------------------------------------------------------------------------- transforms


def detail_rows(enriched: DataFrame, day: date) -> DataFrame:
    """The `product_views` rows of the day, in the table's column order."""
    return enriched.select(
        F.lit(day).cast("date").alias("day"),
        F.col("advertiser_id").cast("long"),
        F.col("product_id"),
        F.col("view_count").cast("long"),
        F.col("matched").cast("boolean"),
    )


def aggregate_match_rates(detail: DataFrame) -> DataFrame:
    """Per advertiser and day: products and views, matched or not, and the view match rate."""
    matched = F.col("matched")
    return (
        detail.groupBy("day", "advertiser_id")
        .agg(
            F.count(F.lit(1)).alias("total_products"),
            F.sum(matched.cast("long")).alias("matched_products"),
            F.sum("view_count").alias("total_views"),
            F.sum(F.when(matched, F.col("view_count")).otherwise(F.lit(0)))
            .cast("long")
            .alias("matched_views"),
        )
        .withColumn("match_rate", F.col("matched_views") / F.col("total_views"))
    )


# --------------------------------------------------------------------------- extract


@dataclass
class Extracted:
    views: DataFrame  # advertiser_id, product_id, view_count (> 0)
    cached: DataFrame  # what the extract persisted; released once the enriched rows are cached
    counts: Dict[str, int] = field(default_factory=dict)
    quarantine_path: Optional[str] = None  # where the day's rejected lines went (when there were any)
    steps: Dict[str, float] = field(default_factory=dict)  # seconds per step of the extract


def extract(spark: SparkSession, cfg: Config, day: date, run_id: str) -> Extracted:
    if cfg.source == "presto":
        return _extract_presto(spark, cfg, day)
    return _extract_events(spark, cfg, day, run_id)


def _extract_events(spark: SparkSession, cfg: Config, day: date, run_id: str) -> Extracted:
    from spark_app.events.availability import check_day_available
    from spark_app.events.read import read_day_events

    assert cfg.events is not None
    steps: Dict[str, float] = {}
    with step(steps, "availability"):
        available = check_day_available(cfg.events, day, s3=cfg.s3)  # DataNotReady; logs what dt=D+1 lacks
    # one pass over the files listed above: counts, dedup and views per key together; logs corrupt
    # files, quarantine
    day_events = read_day_events(
        spark, cfg.events, day, run_id, s3=cfg.s3, listed=available.folders, steps=steps
    )
    # the viewed keys and their views, read from the pass's cache (day_events.cached); the totals
    # of the keys were observed in the same pass
    views = day_events.result
    counts = _event_counts(day_events.counts, day_events.totals)
    counts["corrupt_files"] = len(day_events.corrupt_files)
    quarantine = day_events.quarantine_path if counts.get("rejected") else None
    return Extracted(views, day_events.cached, counts, quarantine, steps)


def _event_counts(source_counts: Dict[str, int], totals: Any) -> Dict[str, int]:
    """Counts of the event path that add up: every line read is accounted for exactly once.

    Each count comes from its own place: the lines, their outcomes and the events the dedup
    buckets kept (`distinct_events`) from the read's reports, the views and other events from
    the per-key sums. So the distinct events must equal views plus other events, duplicates are
    the in-day events less the distinct ones, no count may be negative, and the lines read must
    equal rejected + outside_day + duplicate_events + other_event_types + product_view_events.
    Anything else raises PipelineError: the day is not published.
    """
    in_day = int(source_counts["in_day"])
    distinct_events = int(source_counts["distinct_events"])
    views, others = int(totals["view_events"] or 0), int(totals["other_events"] or 0)
    counts = {
        "lines_read": int(source_counts["lines_read"]),
        "rejected": int(source_counts["rejected"]),
        "outside_day": int(source_counts["outside_day"]),
        "duplicate_events": in_day - distinct_events,
        "other_event_types": others,
        "product_view_events": views,
        "viewed_products": int(totals["viewed_products"] or 0),
    }
    counts.update({k: int(v) for k, v in source_counts.items() if k.startswith("rejected_") and v})
    refuse = "refusing to publish a day that may have lost rows"
    if distinct_events != views + others:
        raise PipelineError(
            f"event counts do not add up: the dedup buckets kept {distinct_events:,} distinct events but "
            f"the views per key hold {views:,} product views and {others:,} other events; {refuse}"
        )
    negative = sorted(k for k, v in counts.items() if v < 0)
    if negative:
        raise PipelineError(
            f"event counts do not add up: {', '.join(negative)} negative ({counts}; {in_day:,} in-day "
            f"events, {distinct_events:,} distinct); {refuse}"
        )
    accounted = (
        counts["rejected"]
        + counts["outside_day"]
        + counts["duplicate_events"]
        + counts["other_event_types"]
        + counts["product_view_events"]
    )
    if accounted != counts["lines_read"]:
        raise PipelineError(
            f"event counts do not add up: {counts['lines_read']:,} lines read but {accounted:,} "
            f"accounted for ({counts}); {refuse}"
        )
    return counts


def _extract_presto(spark: SparkSession, cfg: Config, day: date) -> Extracted:
    from spark_app.presto.read import read_presto_views

    assert cfg.presto is not None
    views = read_presto_views(spark, cfg.presto, day).persist(StorageLevel.MEMORY_AND_DISK)
    totals = views.agg(F.count(F.lit(1)).alias("n"), F.sum("view_count").alias("v")).first()
    counts = {
        "presto_rows": int(totals["n"]),
        "viewed_products": int(totals["n"]),
        "product_view_events": int(totals["v"] or 0),
    }
    return Extracted(views, views, counts)


# --------------------------------------------------------------------------- the run


def compute_tables(
    spark: SparkSession, cfg: Config, day: date, progress: Progress, run_id: str
) -> Dict[str, DataFrame]:
    """Extract, enrich (once, persisted) and aggregate; nothing is written."""
    from spark_app.dynamo.choose import enrich_day
    from spark_app.dynamo.counters import LookupCounters

    with progress.stage("extract") as st:
        extracted = extract(spark, cfg, day, run_id)
        progress.add_counts(extracted.counts)
        if extracted.quarantine_path:
            progress.facts["quarantine_path"] = extracted.quarantine_path
        st.rows = extracted.counts.get("viewed_products")
        if extracted.steps:
            st.detail["steps"] = extracted.steps

    with progress.stage("enrich") as st:
        try:
            counters = LookupCounters(spark.sparkContext)
            enriched = enrich_day(extracted.views, cfg, counters, progress=progress, stage=st)
            detail = detail_rows(enriched, day).persist(StorageLevel.MEMORY_AND_DISK)
            st.rows = detail.count()
        finally:
            extracted.cached.unpersist()
        st.detail.update(_round_floats(counters.snapshot()))

    with progress.stage("aggregate") as st:
        aggregate = aggregate_match_rates(detail).persist(StorageLevel.MEMORY_AND_DISK)
        st.rows = aggregate.count()
        progress.add_counts({"advertisers": st.rows})
    return {DETAIL_TABLE: detail, AGGREGATE_TABLE: aggregate}


def run(spark: SparkSession, cfg: Config, day: date, progress: Progress) -> Dict[str, Any]:
    """Run the day end to end; returns the run's stats (also stored in pipeline_runs)."""
    from spark_app.ops.outputs import publish_outputs
    from spark_app.postgres.connect import connection_spec
    from spark_app.postgres.publish import DayRun
    from spark_app.postgres.schema import upgrade_schema

    spec = connection_spec(cfg.postgres)
    with progress.stage("migrate"):
        upgrade_schema(spec, cfg.postgres.schema)

    pg = cfg.postgres
    day_run = DayRun(
        spec, NAME, day, schema=pg.schema, copy_batch_rows=pg.copy_batch_rows, locks=lock_policy(cfg),
        retention_days=pg.retention_days,
    )
    tables: Dict[str, DataFrame] = {}
    try:
        with day_run:
            try:
                with translate_task_errors():
                    tables.update(compute_tables(spark, cfg, day, progress, day_run.run_id))
                    _load_check_publish(spark, cfg, day, progress, day_run, tables, spec)
            except Exception as exc:
                day_run.fail(exc, progress.as_stats())
                raise
            day_run.record_stats(progress.as_stats())
        publish_outputs(cfg, NAME, day, day_run.run_id, progress)  # report, summary, marker; never raises
    finally:
        for table in tables.values():  # a backfill runs day after day in one session
            table.unpersist()
    return progress.as_stats()


def _load_check_publish(spark, cfg: Config, day: date, progress: Progress, day_run, tables, spec) -> None:
    """Stage both tables, gate on quality, then publish the day in one transaction."""
    with progress.stage("load") as st:
        loaded = {name: day_run.stage(df, name) for name, df in tables.items()}
        st.rows = sum(r.rows_loaded for r in loaded.values())
        rejected_at_load = sum(r.rows_rejected for r in loaded.values())
        progress.add_counts({"rejected_at_load": rejected_at_load})
    with progress.stage("quality") as st:
        steps: Dict[str, float] = {}
        gate = check_quality(spark, cfg, tables, day, day_run.run_id, spec, steps=steps)
        st.detail["engine"] = gate.engine
        st.detail["steps"] = steps
        st.detail["warnings"] = len(gate.warnings)
        progress.facts["quality_warnings"] = [f"{w.table}: {w.check}: {w.message}" for w in gate.warnings]
        st.detail["errors"] = len(gate.errors)
        st.detail["passed"] = sum(r.status == "Success" for r in gate.results)
        note_overrides(gate, progress)
        if gate.errors:
            raise QualityGateFailed(_describe_failures(day, gate.errors))
    with progress.stage("publish") as st:
        counts = progress.counts
        rows_out = loaded[DETAIL_TABLE].rows_loaded
        day_run.publish(
            rows_in=counts.get("lines_read", counts.get("presto_rows", 0)),
            rows_out=rows_out,
            rows_rejected=counts.get("rejected", 0) + rejected_at_load,
            stats=progress.as_stats(),
            expected_rows=computed_rows(counts),
        )
        st.rows = rows_out


def note_overrides(gate: Any, progress: Progress) -> None:
    """The run's summary says when an operator let the shrink guard pass a small day."""
    from spark_app.quality.shrink import overridden

    for result in overridden(gate.results):
        progress.add_note(f"shrink guard overridden: {result.table}: {result.message}")


def computed_rows(counts: Dict[str, int]) -> Dict[str, int]:
    """The rows each table must stage: one per viewed product, one per advertiser with views."""
    return {DETAIL_TABLE: counts["viewed_products"], AGGREGATE_TABLE: counts["advertisers"]}


def lock_policy(cfg: Config):
    from spark_app.postgres.locks import LockPolicy

    pg = cfg.postgres
    return LockPolicy(pg.lock_timeout_seconds, pg.publish_attempts, pg.publish_backoff_seconds)


def check_quality(
    spark: SparkSession,
    cfg: Config,
    tables: Dict[str, DataFrame],
    day: date,
    run_id: str,
    spec: Optional[Any] = None,
    record: bool = True,
    steps: Optional[Dict[str, float]] = None,
):
    """Run the configured (or default) checks on every table against the history in `spec`.

    The day's metrics are recorded when `spec` is given and `record` is true; `record=False`
    judges the same way and writes nothing (`process_data.py quality`).
    """
    from pipelines.catalog_match_rate_quality import DEFAULT_CHECKS, SHRINK_TARGET
    from spark_app.quality.gate import run_gate

    gate = run_gate(
        spark,
        tables,
        cfg.quality,
        default_checks=DEFAULT_CHECKS,
        pipeline=NAME,
        day=day,
        run_id=run_id,
        spec=spec,
        schema=cfg.postgres.schema,
        shrink_target=SHRINK_TARGET,
        record=record,
        steps=steps,
    )
    return gate  # run_gate has logged each warning


def _describe_failures(day: date, errors: List[Any]) -> str:
    lines = [f"data-quality gate failed for {NAME} on {day}: nothing was published"]
    lines += [f"  - {e}" for e in errors]
    return "\n".join(lines)


def _round_floats(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}
