"""The event-log source: one day of product events from `dt=D` and `dt=D+1`, validated and counted.

Day D means the UTC date of `ts`. Writers put an event in the folder of the hour it arrived,
so events of the last minutes of D land in `dt=D+1`; both folders are read and only the
events of D are kept. Invalid records are not dropped silently: each gets a reason, is
counted, and is written with its raw text to the quarantine for the run.

Spark work per call (see docs/events.md): the driver lists the files; one pass reads them
(tasks of whole files, `spark_app.events.scan`) and sends each in-day event, packed in Arrow, to
the bucket of its event_id (`spark_app.events.buckets`); each bucket is deduplicated and counted
per key in Arrow (`spark_app.events.views`); Spark sums the keys' partial counts and persists
the viewed keys (`DayEvents.result`). The counts, and the totals of the summed keys
(`DayEvents.totals`), come back through `DataFrame.observe` from that same pass.
The quarantine is a second read of only the files that had rejected records. `events` itself
stays lazy: using it reads the files again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Dict, List, Optional, Sequence

from spark_app.config import EventsConfig, S3Config
from spark_app.errors import DataNotReady, PipelineError, SourceError
from spark_app.events.buckets import spark_labels
from spark_app.events.counts import bad_share, by_folder, check_every_file_reported, day_counts, rejected_of
from spark_app.events.files import FolderListing, SourceFile, day_folders, list_folder, s3_client
from spark_app.events.parse import DayWindow
from spark_app.events.scan import (
    PAYLOAD_SCHEMA,
    QUARANTINE_SCHEMA,
    SCAN_SCHEMA,
    ScanSpec,
    bucket_partition,
    quarantine_partition,
    scan_partition,
)
from spark_app.events.views import PARTIAL_SCHEMA, count_buckets
from spark_app.progress import step
from spark_app.s3_uri import is_s3_uri

log = logging.getLogger(__name__)

EVENT_SCHEMA = "event_id string, event_type string, ts timestamp, advertiser_id bigint, product_id string"


@dataclass
class DayEvents:
    """The valid events of one day plus the bookkeeping that says how they were obtained.

    `counts["lines_read"]` is counted from the files' bytes (newlines, less blank lines), apart
    from the classification; `in_day` is the number of events that reached Spark. A read whose
    `lines_read != in_day + outside_day + rejected` raises instead of returning. `bad_share` is
    the estimated share of the day's input that could not be used (see `bad_share`).
    """

    day: date
    events: object  # DataFrame: EVENT_SCHEMA, every valid event of the day, duplicates kept (lazy)
    counts: Dict[str, int]
    corrupt_files: List[str] = field(default_factory=list)
    quarantine_path: Optional[str] = None  # <quarantine>/run_id=<run>/dt=<D>; written when rejected > 0
    bad_share: float = 0.0
    spark_jobs: int = 0  # jobs this call ran (the caller's use of `events` comes on top)
    result: object = None  # the viewed keys (advertiser_id, product_id, view_count > 0), cached
    totals: Dict[str, int] = field(default_factory=dict)  # keys, view_events, other_events, viewed_products
    rejected_by_folder: Dict[str, int] = field(default_factory=dict)
    lines_by_folder: Dict[str, int] = field(default_factory=dict)

    cached: object = None  # what `result` reads from: released by `release()`

    def release(self) -> None:
        """Free the cached result once the caller is done with it."""
        if self.cached is not None:
            self.cached.unpersist()


def quarantine_root(cfg: EventsConfig) -> str:
    return (cfg.quarantine_path or f"{cfg.path.rstrip('/')}/_quarantine").rstrip("/")


def quarantine_folder(cfg: EventsConfig, day: date, run_id: str) -> str:
    return f"{quarantine_root(cfg)}/run_id={run_id}/dt={day.isoformat()}"


def read_day_events(
    spark,
    cfg: EventsConfig,
    day: date,
    run_id: str,
    now: Optional[datetime] = None,
    s3: Optional[S3Config] = None,
    listed: Optional[Sequence[FolderListing]] = None,
    steps: Optional[Dict[str, float]] = None,
) -> DayEvents:
    """Read, validate and count the events of `day`; quarantine the rejected records.

    `DayEvents.result` holds the product views of the distinct events per viewed (advertiser_id,
    product_id), computed in the same pass as the counts and persisted; `DayEvents.totals` the
    keys, views and other events of all keys. Raises DataNotReady
    when `dt=D` holds no data file, SourceError when the files cannot be read or the bad share
    exceeds `cfg.max_bad_share` (the quarantine is written first, so the rejected records can
    be inspected), PipelineError when the lines read and their outcomes do not add up. `s3` is
    the endpoint `s3://` files are listed and opened at (in the tasks too). `listed`: dt=D and
    dt=D+1 as `check_day_available` listed them (`AvailabilityReport.folders`), read as they are;
    without it both folders are listed here. `steps`, when given, gets the seconds of each step
    (`spark_app.progress.step`): listing, plan, pass, checks, quarantine.
    """
    now = now or datetime.now(timezone.utc)
    sc = spark.sparkContext
    group = f"events-{run_id}-{day.isoformat()}-{uuid.uuid4().hex[:8]}"
    saved = {key: sc.getLocalProperty(key) for key in ("spark.jobGroup.id", "spark.job.description")}
    sc.setJobGroup(group, f"read events of {day.isoformat()} for run {run_id}")
    try:
        result = _read(spark, cfg, day, run_id, now, s3, listed, steps)
    finally:
        for key, value in saved.items():
            sc.setLocalProperty(key, value)
    result.spark_jobs = len(sc.statusTracker().getJobIdsForGroup(group))
    log.info("events of %s: %s, %d Spark jobs", day, result.counts, result.spark_jobs)
    _fail_when_too_bad(cfg, result)
    return result


def _read(spark, cfg: EventsConfig, day: date, run_id: str, now: datetime, s3: Optional[S3Config],
          listed: Optional[Sequence[FolderListing]], steps: Optional[Dict[str, float]] = None) -> DayEvents:
    from pyspark.sql import Observation

    with step(steps, "listing"):
        files = _day_files(day, listed if listed is not None else _list_day(cfg, day, s3))
    window = DayWindow.of(day, now, cfg.max_future_minutes, cfg.event_types)
    spec = ScanSpec(cfg.format, window, s3=s3)
    observation = Observation(f"events_{uuid.uuid4().hex[:8]}")
    summed = Observation(f"keys_{uuid.uuid4().hex[:8]}")
    buckets = bucket_count(files, cfg, spark.sparkContext.defaultParallelism)
    persisted = None
    try:
        with step(steps, "plan"):
            persisted = _views(spark, files, spec, (observation, summed), buckets).persist(_storage_level())
        with step(steps, "pass"):
            # the observed pass, every file read once; Spark's "noop" sink fills the cache without
            # the extra aggregation job a count() adds
            persisted.write.format("noop").mode("overwrite").save()
            observed, totals = observation.get, summed.get
        with step(steps, "checks"):
            counts, reports = day_counts(observed)
            check_every_file_reported(files, reports)
    except Exception as exc:  # noqa: BLE001 - Py4J, analysis and Spark errors alike: a read failed
        if persisted is not None:
            persisted.unpersist()
        if isinstance(exc, PipelineError):
            raise
        raise SourceError(f"events of {day}: reading {len(files)} files failed: {_first_line(exc)}") from exc
    corrupt = {r["path"]: r["problem"] for r in reports if r.get("problem")}
    for path, problem in sorted(corrupt.items()):
        log.warning("unreadable event file %s (%s): its lines are left out of %s", path, problem, day)
    qfolder = quarantine_folder(cfg, day, run_id)
    rejecting = [r["path"] for r in reports if rejected_of(r)]
    try:
        with step(steps, "quarantine"):
            _write_quarantine(spark, spec, rejecting, qfolder, run_id, counts["rejected"])
    except Exception as exc:  # noqa: BLE001
        if persisted is not None:
            persisted.unpersist()
        problem = _first_line(exc)
        raise SourceError(f"events of {day}: writing the quarantine {qfolder} failed: {problem}") from exc
    rejected_folders, lines_by_folder = by_folder(reports)
    return DayEvents(
        day=day,
        events=_events(spark, files, spec),
        counts=counts,
        corrupt_files=sorted(corrupt),
        quarantine_path=qfolder,
        bad_share=bad_share(counts, files, corrupt),
        result=_keys(persisted),
        totals={k: int(v or 0) for k, v in totals.items()},
        cached=persisted,
        rejected_by_folder=rejected_folders,
        lines_by_folder=lines_by_folder,
    )


def _list_day(cfg: EventsConfig, day: date, s3: Optional[S3Config] = None) -> List[FolderListing]:
    """dt=D (required) and dt=D+1 (optional, for late arrivals), their data files listed literally."""
    this_day, next_day = day_folders(cfg.path, day)
    client = s3_client(s3) if is_s3_uri(cfg.path) else None
    try:
        return [list_folder(this_day, client), list_folder(next_day, client)]
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors share no useful base here
        raise SourceError(f"events of {day}: listing {this_day} failed: {_first_line(exc)}") from exc


def _day_files(day: date, listed: Sequence[FolderListing]) -> List[SourceFile]:
    this_day, next_day = listed
    if not this_day.files:
        raise DataNotReady(f"events of {day}: no data file in {this_day.path}; the day has not landed yet")
    if not next_day.files:
        log.warning("events of %s: %s is empty or absent; its late events are missing", day, next_day.path)
    return list(this_day.files + next_day.files)


def bucket_count(files: List[SourceFile], cfg: EventsConfig, parallelism: int) -> int:
    """Dedup buckets: one per `cfg.bucket_mb` of input (so a bucket's memory does not grow with
    the day), at least one per core."""
    total = sum(f.size for f in files)
    return max(parallelism, -(-total // (cfg.bucket_mb << 20)))


def _views(spark, files: List[SourceFile], spec: ScanSpec, observations, buckets: int):
    """The observed pass: files -> bucket payloads -> distinct events per key (partial) -> summed.

    `observations`: (the reports', the summed keys' totals); what is kept (and cached) is only
    what enrich needs: the viewed keys and their views, plus the group of report rows.
    """
    from pyspark.sql import functions as F

    observation, summed = observations
    labels = spark_labels(buckets)
    payloads = _file_names(spark, files).mapInArrow(bucket_partition(spec, labels), PAYLOAD_SCHEMA)
    partials = payloads.repartition(buckets, "label").mapInArrow(count_buckets, PARTIAL_SCHEMA)
    observed = partials.observe(observation, F.concat_ws("\n", F.collect_list("report")).alias("reports"))
    # The report rows (no key, no counts) go through the aggregation as one group that is cached
    # with the keys and filtered out only when read (`_keys`): the cached result is never empty,
    # so adaptive execution never replaces the observed plan by an empty relation, which would
    # drop its metrics without a word (a day whose every line is rejected, for one).
    views = F.col("view_count")
    per_key = observed.groupBy("advertiser_id", "product_id").agg(
        F.sum("view_count").alias("view_count"), F.sum("other_events").alias("other_events")
    )
    # the totals the counts need, from the same pass: no second job over the cached keys
    totals = per_key.observe(
        summed,
        F.count(views).alias("keys"),
        F.sum(views).alias("view_events"),
        F.sum("other_events").alias("other_events"),
        F.count(F.when(views > 0, 1)).alias("viewed_products"),
    )
    return totals.where(views.isNull() | (views > 0)).select("advertiser_id", "product_id", "view_count")


def _keys(cached):
    """The views per key of the cached pass, without its group of report rows."""
    from pyspark.sql import functions as F

    return cached.where(F.col("view_count").isNotNull())


def _events(spark, files: List[SourceFile], spec: ScanSpec):
    """Tasks of whole files; the valid in-day events as EVENT_SCHEMA, duplicates kept (lazy)."""
    from pyspark.sql import functions as F

    scanned = _file_names(spark, files).mapInArrow(scan_partition(spec), SCAN_SCHEMA)
    is_event = F.col("report").isNull()
    return scanned.where(is_event).select(
        "event_id",
        "event_type",
        F.timestamp_micros("ts_us").alias("ts"),  # epoch µs, UTC: no session time zone involved
        "advertiser_id",
        "product_id",
    )


def _file_names(spark, files: List[SourceFile]):
    """A one-column frame of literal paths: tasks of about equal bytes, at most two per core.

    Built in the JVM (a range of one row per task, each exploded into its literal paths): no
    Python RDD and no schema to parse, which a fresh session pays for in seconds.
    """
    from pyspark.sql import functions as F

    sc = spark.sparkContext
    bins: List[List[str]] = [[] for _ in range(max(1, min(len(files), 2 * sc.defaultParallelism)))]
    loads = [0] * len(bins)
    for f in sorted(files, key=lambda f: -f.size):  # largest first, each into the lightest task
        i = loads.index(min(loads))
        bins[i].append(f.path)
        loads[i] += f.size
    paths = F.array(*[F.array(*[F.lit(p) for p in b]).cast("array<string>") for b in bins])
    task = (F.col("id") + 1).cast("int")
    return spark.range(0, len(bins), 1, len(bins)).select(F.explode(F.element_at(paths, task)).alias("path"))


def _storage_level():
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK


def _write_quarantine(spark, spec: ScanSpec, paths: List[str], folder: str, run_id: str, rejected: int):
    """Rejected records as JSON lines, re-read from the files that had any; a rerun replaces them."""
    if rejected == 0:
        _delete_if_present(spark, folder)
        return
    from pyspark.sql import functions as F

    listed = [SourceFile(p, 1) for p in paths]
    rows = _file_names(spark, listed).mapInArrow(quarantine_partition(spec), QUARANTINE_SCHEMA)
    (
        rows.select("raw", "reason", "source_file", F.lit(run_id).alias("run_id"))
        .coalesce(max(1, min(64, rejected // 1_000_000)))
        .write.mode("overwrite")
        .json(folder)
    )
    log.warning("%d rejected event records quarantined in %s", rejected, folder)


def _delete_if_present(spark, folder: str) -> None:
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(folder)
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
    if fs.exists(hpath):
        fs.delete(hpath, True)


def _fail_when_too_bad(cfg: EventsConfig, result: DayEvents) -> None:
    if result.bad_share <= cfg.max_bad_share:
        return
    result.release()
    head = f"events of {result.day}: "
    if result.corrupt_files:
        head += f"reading {len(result.corrupt_files)} files failed ({', '.join(result.corrupt_files)}); "
    raise SourceError(
        f"{head}bad share {result.bad_share:.2%} exceeds max_bad_share "
        f"{cfg.max_bad_share:.2%} (rejected {result.counts['rejected']} of {result.counts['lines_read']} "
        f"lines{_folders_text(result)}, see {result.quarantine_path}; unreadable files: "
        f"{', '.join(result.corrupt_files) or 'none'})"
    )


def _folders_text(result: DayEvents) -> str:
    parts = [
        f"{n} of {result.lines_by_folder.get(folder, 0)} in {folder}"
        for folder, n in sorted(result.rejected_by_folder.items())
    ]
    return f": {'; '.join(parts)}" if parts else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
