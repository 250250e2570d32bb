"""Turning raw event records into typed events, or into a rejection reason.

Both inputs (JSON lines and Parquet) are first brought to the same shape: every field as a
string, plus the raw record. Validation then happens once, here, so that a value of the wrong
type is rejected with a reason instead of silently becoming null: `1.5`, `"abc"` and
`99999999999999999999` are not advertiser ids, `"2024"` is not a timestamp.

Each record gets exactly one outcome: `rejected` (with the first failing reason, in the order
of REASONS), `outside_day`, `in_day`, or `blank` (an empty line, not a record at all).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Sequence

FIELDS = ("event_id", "event_type", "ts", "advertiser_id", "product_id")

# Checked in this order; a record is counted under the first reason that applies.
REASONS = (
    "malformed_json",  # not a JSON object
    "missing_field",  # a required field absent, null or empty
    "bad_advertiser_id",  # not a positive integer that fits a bigint
    "bad_ts",  # neither ISO-8601 date-time nor 12-13 digit epoch milliseconds
    "nul_in_product_id",  # PostgreSQL text cannot hold U+0000
    "future_ts",  # later than now + max_future_minutes
)

OUTCOMES = ("in_day", "outside_day", "rejected", "blank")

# ISO-8601 date-time with seconds; offset Z, +hh, +hhmm or +hh:mm; none means UTC.
ISO_TS = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
# Epoch milliseconds of 12 or 13 digits (1973-03-03 .. 2286-11-20): a shorter number is far more
# likely epoch seconds or a bare year than an event of the 1970s, so it is rejected as bad_ts.
EPOCH_MS = r"^[0-9]{12,13}$"
POSITIVE_BIGINT = r"^[0-9]{1,19}$"


def json_string_schema():
    """Every field as a string (a number token keeps its text), plus the corrupt-record column."""
    from pyspark.sql import types as T

    names = list(FIELDS) + ["_corrupt_record"]
    return T.StructType([T.StructField(n, T.StringType()) for n in names])


def parse_json_lines(lines):
    """(raw, source_file) lines -> string fields + `malformed` flag + `blank` flag."""
    from pyspark.sql import functions as F

    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}
    parsed = lines.select(
        "raw", "source_file", F.from_json(F.col("raw"), json_string_schema(), options).alias("j")
    )
    malformed = F.col("j").isNull() | F.col("j._corrupt_record").isNotNull()
    return parsed.select(
        "raw",
        "source_file",
        *[F.col(f"j.{f}").alias(f"s_{f}") for f in FIELDS],
        malformed.alias("malformed"),
        (F.trim(F.col("raw")) == "").alias("blank"),
    )


def parquet_as_strings(frame, source_file_col):
    """Parquet rows -> the same shape as `parse_json_lines`: fields cast to string, raw as JSON.

    A field absent from the files becomes null (-> missing_field); a field of another type
    becomes its text and is validated like any JSON token (a double advertiser id is rejected).
    """
    from pyspark.sql import functions as F

    present = set(frame.columns)
    raw = F.to_json(F.struct(*[F.col(c) for c in frame.columns]))
    cols = [
        (F.col(f).cast("string") if f in present else F.lit(None).cast("string")).alias(f"s_{f}")
        for f in FIELDS
    ]
    return frame.select(
        raw.alias("raw"),
        source_file_col.alias("source_file"),
        *cols,
        F.lit(False).alias("malformed"),
        F.lit(False).alias("blank"),
    )


def utc_literal(moment: datetime):
    """A timestamp literal that means the same instant whatever the session or JVM time zone."""
    from pyspark.sql import functions as F

    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return F.lit(text).cast("timestamp")


def parse_ts(s_ts):
    """ISO-8601 text or epoch milliseconds -> timestamp; anything else -> null."""
    from pyspark.sql import functions as F

    epoch = F.when(s_ts.rlike(EPOCH_MS), F.timestamp_millis(s_ts.cast("bigint")))
    iso = F.when(s_ts.rlike(ISO_TS), s_ts.cast("timestamp"))
    return F.coalesce(epoch, iso)


def classify(strings, day: date, now: datetime, max_future_minutes: int, known_types: Sequence[str]):
    """Add typed columns, `reason` (null when valid), `outcome` and `unknown_type`.

    `now` is fixed by the driver, so every task (and every retry) judges "future" alike.
    """
    from pyspark.sql import functions as F

    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    future_limit = now + timedelta(minutes=max_future_minutes)
    adv = F.col("s_advertiser_id")
    # Parsed once into columns: each later test reads the column instead of re-parsing the text.
    typed = strings.select(
        "*",
        parse_ts(F.col("s_ts")).alias("ts"),
        F.when(adv.rlike(POSITIVE_BIGINT), adv.cast("bigint")).alias("advertiser_id"),
    )
    ts, adv_long = F.col("ts"), F.col("advertiser_id")
    missing = F.lit(False)
    for f in FIELDS:
        missing = missing | F.col(f"s_{f}").isNull() | (F.col(f"s_{f}") == "")
    reason = (
        F.when(F.col("malformed"), "malformed_json")
        .when(missing, "missing_field")
        .when(adv_long.isNull() | (adv_long <= 0), "bad_advertiser_id")
        .when(ts.isNull(), "bad_ts")
        .when(F.instr(F.col("s_product_id"), "\u0000") > 0, "nul_in_product_id")
        .when(ts > utc_literal(future_limit), "future_ts")
    )
    typed = typed.select("*", reason.alias("reason"))
    in_day = (ts >= utc_literal(start)) & (ts < utc_literal(start + timedelta(days=1)))
    outcome = (
        F.when(F.col("blank"), "blank")
        .when(F.col("reason").isNotNull(), "rejected")
        .when(in_day, "in_day")
        .otherwise("outside_day")
    )
    return typed.select(
        F.col("s_event_id").alias("event_id"),
        F.col("s_event_type").alias("event_type"),
        "ts",
        "advertiser_id",
        F.col("s_product_id").alias("product_id"),
        F.when(F.col("blank"), None).otherwise(F.col("reason")).alias("reason"),
        outcome.alias("outcome"),
        (~F.col("s_event_type").isin(*known_types)).alias("unknown_type"),
        # Raw text and file are kept only where the quarantine needs them.
        F.when(F.col("reason").isNotNull() & ~F.col("blank"), F.col("raw")).alias("raw"),
        F.when(F.col("reason").isNotNull() & ~F.col("blank"), F.col("source_file")).alias("source_file"),
    )
