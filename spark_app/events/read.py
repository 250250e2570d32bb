"""The event-log source: one day of product events from `dt=D` and `dt=D+1`, validated and counted.

Day D means the UTC date of `ts`. Writers put an event in the folder of the hour it arrived,
so events of the last minutes of D land in `dt=D+1`; both folders are read and only the
events of D are kept. Invalid records are not dropped silently: each gets a reason, is
counted, and is written with its raw text to the quarantine for the run.

Spark work per call (measured, see docs/events.md): one job for the gzip integrity check
(only when the day has .gz files); one aggregation for every count, which under adaptive
execution is three jobs (materializing the persisted classified records, the only pass over
the input; the partial counts; the final counts); one write of the quarantine (only when
something was rejected). The returned `events` reads the same persisted records.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Dict, List, Optional

from spark_app.config import EventsConfig, S3Config
from spark_app.errors import DataNotReady, PipelineError, SourceError
from spark_app.events.files import SourceFile, day_folder, day_folders, find_corrupt_gzip, list_data_files
from spark_app.events.parse import FIELDS, OUTCOMES, REASONS, classify, parquet_as_strings, parse_json_lines

log = logging.getLogger(__name__)

EVENT_SCHEMA = "event_id string, event_type string, ts timestamp, advertiser_id bigint, product_id string"


@dataclass
class DayEvents:
    """The valid events of one day plus the bookkeeping that says how they were obtained.

    `counts` always satisfies lines_read == in_day + outside_day + rejected and
    rejected == sum of rejected_<reason>. `bad_share` is the estimated share of the day's
    input lines that could not be used (see `bad_share`).
    """

    day: date
    events: object  # DataFrame: EVENT_SCHEMA, every valid event of the day, duplicates kept
    counts: Dict[str, int]
    corrupt_files: List[str] = field(default_factory=list)
    quarantine_path: Optional[str] = None  # <quarantine>/run_id=<run>/dt=<D>; written when rejected > 0
    bad_share: float = 0.0
    spark_jobs: int = 0  # jobs this call ran (the caller's use of `events` comes on top)
    _classified: object = None

    def release(self) -> None:
        """Free the persisted records once the caller is done with `events`."""
        if self._classified is not None:
            self._classified.unpersist()


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
) -> DayEvents:
    """Read, validate and count the events of `day`; quarantine the rejected records.

    Raises DataNotReady when `dt=D` holds no data file, SourceError when the files cannot be
    read or the bad share exceeds `cfg.max_bad_share` (the quarantine is written first, so
    the rejected records can be inspected). `s3` is the endpoint the tasks open `s3://` files at.
    """
    now = now or datetime.now(timezone.utc)
    sc = spark.sparkContext
    group = f"events-{run_id}-{day.isoformat()}-{uuid.uuid4().hex[:8]}"
    saved = {key: sc.getLocalProperty(key) for key in ("spark.jobGroup.id", "spark.job.description")}
    sc.setJobGroup(group, f"read events of {day.isoformat()} for run {run_id}")
    try:
        result = _read(spark, cfg, day, run_id, now, s3)
    finally:
        for key, value in saved.items():
            sc.setLocalProperty(key, value)
    result.spark_jobs = len(sc.statusTracker().getJobIdsForGroup(group))
    log.info("events of %s: %s, %d Spark jobs", day, result.counts, result.spark_jobs)
    _fail_when_too_bad(cfg, result)
    return result


def _read(
    spark, cfg: EventsConfig, day: date, run_id: str, now: datetime, s3: Optional[S3Config]
) -> DayEvents:
    files = _list_day(spark, cfg, day)
    corrupt = find_corrupt_gzip(spark, files, s3) if cfg.format == "json" else {}
    for path, problem in corrupt.items():
        log.warning("unreadable event file %s (%s): its lines are left out of %s", path, problem, day)
    good = [f for f in files if f.path not in corrupt]

    classified = None
    try:
        strings = _strings(spark, cfg, good)
        typed = classify(strings, day, now, cfg.max_future_minutes, cfg.event_types)
        classified = _persist(spark, cfg, typed)
        counts = _count(classified)
    except PipelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - Py4J, analysis and Spark errors alike: a read failed
        if classified is not None:
            classified.unpersist()
        raise SourceError(f"events of {day}: reading {len(good)} files failed: {_first_line(exc)}") from exc
    qfolder = quarantine_folder(cfg, day, run_id)
    try:
        _write_quarantine(spark, classified, qfolder, run_id, counts["rejected"])
    except Exception as exc:  # noqa: BLE001
        classified.unpersist()
        problem = _first_line(exc)
        raise SourceError(f"events of {day}: writing the quarantine {qfolder} failed: {problem}") from exc

    from pyspark.sql import functions as F

    events = classified.where(F.col("outcome") == "in_day").select(*FIELDS)
    return DayEvents(
        day=day,
        events=events,
        counts=counts,
        corrupt_files=sorted(corrupt),
        quarantine_path=qfolder,
        bad_share=bad_share(counts, files, corrupt),
        _classified=classified,
    )


def _list_day(spark, cfg: EventsConfig, day: date) -> List[SourceFile]:
    """The data files of dt=D (required) and dt=D+1 (optional, for late arrivals)."""
    this_day, next_day = day_folders(cfg.path, day)
    files = list_data_files(spark, this_day)
    if not files:
        raise DataNotReady(f"events of {day}: no data file in {this_day}; the day has not landed yet")
    late = list_data_files(spark, next_day)
    if not late:
        log.warning("events of %s: %s is empty or absent; late events of %s are missing", day, next_day, day)
    return files + late


def _strings(spark, cfg: EventsConfig, files: List[SourceFile]):
    """The records of `files` with every field as a string (see spark_app.events.parse)."""
    from pyspark.sql import functions as F

    paths = [f.path for f in files]
    if not paths:
        empty = spark.createDataFrame([], "raw string, source_file string")
        return parse_json_lines(empty)
    if cfg.format == "parquet":
        frame = spark.read.option("mergeSchema", "true").parquet(*paths)
        return parquet_as_strings(frame, F.input_file_name())
    lines = spark.read.text(paths).select(
        F.col("value").alias("raw"), F.input_file_name().alias("source_file")
    )
    return parse_json_lines(lines)


def _persist(spark, cfg: EventsConfig, classified):
    """Persist under the configured split size; the cached plan is fixed at this moment."""
    key = "spark.sql.files.maxPartitionBytes"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, str(cfg.files_per_partition_mb * 1024 * 1024))
    try:
        return classified.persist()
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def _count(classified) -> Dict[str, int]:
    """Every count from one aggregation over the persisted records."""
    from pyspark.sql import functions as F

    rows = classified.groupBy("outcome", "reason", "unknown_type").agg(F.count(F.lit(1)).alias("n")).collect()
    counts = {name: 0 for name in OUTCOMES}
    counts.update({f"rejected_{r}": 0 for r in REASONS})
    counts["unknown_event_type"] = 0
    for row in rows:
        counts[row["outcome"]] += row["n"]
        if row["outcome"] == "rejected":
            counts[f"rejected_{row['reason']}"] += row["n"]
        if row["outcome"] == "in_day" and row["unknown_type"]:
            counts["unknown_event_type"] += row["n"]
    counts["blank_lines"] = counts.pop("blank")
    counts["lines_read"] = counts["in_day"] + counts["outside_day"] + counts["rejected"]
    return counts


def _write_quarantine(spark, classified, folder: str, run_id: str, rejected: int) -> None:
    """Rejected records as JSON lines; overwritten, so a rerun of the same run id replaces them."""
    if rejected == 0:
        _delete_if_present(spark, folder)
        return
    from pyspark.sql import functions as F

    (
        classified.where(F.col("outcome") == "rejected")
        .select("raw", "reason", "source_file", F.lit(run_id).alias("run_id"))
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


def bad_share(counts: Dict[str, int], files: List[SourceFile], corrupt: Dict[str, str]) -> float:
    """Estimated share of the day's input lines that could not be used.

    c = bytes of unreadable files / bytes of all data files (their lines are unknown, so bytes
    stand in for lines); r = rejected / lines read from the readable files. The share is
    c + (1 - c) * r: the lost part plus the rejected part of what remained.
    """
    total = sum(f.size for f in files)
    lost = sum(f.size for f in files if f.path in corrupt)
    c = lost / total if total else 0.0
    r = counts["rejected"] / counts["lines_read"] if counts["lines_read"] else 0.0
    return c + (1.0 - c) * r


def _fail_when_too_bad(cfg: EventsConfig, result: DayEvents) -> None:
    if result.bad_share <= cfg.max_bad_share:
        return
    result.release()
    files = ", ".join(result.corrupt_files) or "none"
    raise SourceError(
        f"events of {result.day}: bad share {result.bad_share:.2%} exceeds max_bad_share "
        f"{cfg.max_bad_share:.2%} (rejected {result.counts['rejected']} of {result.counts['lines_read']} "
        f"lines, see {result.quarantine_path}; unreadable files: {files}) "
        f"under {day_folder(cfg.path, result.day)}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
