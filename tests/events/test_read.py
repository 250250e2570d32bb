"""The event-log reader: which records of dt=D and dt=D+1 become events of day D, and why not.

Day D is 2024-03-10 throughout; `now` is fixed at 2024-03-12T00:00Z so that "future" is stable.
"""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_app.config import EventsConfig
from spark_app.errors import DataNotReady, SourceError
from spark_app.events.read import EVENT_SCHEMA, read_day_events
from tests.support.events import event_line

DAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 12, 0, 0, tzinfo=timezone.utc)


def event(event_id, ts, advertiser_id=1, product_id="p1", event_type="product_view", **extra):
    return event_line(event_id, ts, advertiser_id, product_id, event_type, **extra)


def write_lines(root: Path, day: str, name: str, lines) -> Path:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path = folder / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def read(spark, root: Path, run_id="r1", **cfg):
    cfg.setdefault("max_bad_share", 1.0)
    return read_day_events(spark, EventsConfig(path=str(root), **cfg), DAY, run_id, now=NOW)


def quarantined(root: Path, run_id="r1", day="2024-03-10"):
    folder = root / "_quarantine" / f"run_id={run_id}" / f"dt={day}"
    return [json.loads(line) for f in sorted(folder.glob("part-*")) for line in f.read_text().splitlines()]


def assert_counts_add_up(counts):
    assert counts["lines_read"] == counts["in_day"] + counts["outside_day"] + counts["rejected"]
    assert counts["rejected"] == sum(v for k, v in counts.items() if k.startswith("rejected_"))


def ids(result):
    return sorted(r["event_id"] for r in result.events.collect())


def test_each_bad_record_is_rejected_with_its_reason_and_quarantined(spark, tmp_path):
    lines = {
        "good": event("e1", "2024-03-10T12:00:00Z"),
        "unknown type": event("e2", "2024-03-10T13:00:00Z", event_type="hover"),
        "malformed": '{"event_id": "e3", "ts": ',
        "not an object": "[1, 2]",
        "no advertiser": event("e4", "2024-03-10T12:00:00Z", advertiser_id=...),
        "no product": event("e5", "2024-03-10T12:00:00Z", product_id=...),
        "null product": event("e6", "2024-03-10T12:00:00Z", product_id=None),
        "fraction": event("e7", "2024-03-10T12:00:00Z", advertiser_id=1.5),
        "text": event("e8", "2024-03-10T12:00:00Z", advertiser_id="abc"),
        "too big": '{"event_id":"e9","event_type":"product_view","ts":"2024-03-10T12:00:00Z",'
        '"advertiser_id":99999999999999999999,"product_id":"p"}',
        "negative": event("e10", "2024-03-10T12:00:00Z", advertiser_id=-3),
        "bad ts": event("e11", "yesterday"),
        "year only": event("e12", "2024"),
        "no such date": event("e13", "2024-02-30T10:00:00Z"),
        "nul": event("e14", "2024-03-10T12:00:00Z", product_id="a\u0000b"),
    }
    write_lines(tmp_path, "2024-03-10", "part-0.json", list(lines.values()))
    write_lines(tmp_path, "2024-03-11", "part-0.json", [event("e15", "2024-03-12T01:00:01Z")])

    result = read(spark, tmp_path)

    assert ids(result) == ["e1", "e2"]
    c = result.counts
    assert_counts_add_up(c)
    assert (c["lines_read"], c["in_day"], c["outside_day"], c["rejected"]) == (16, 2, 0, 14)
    assert c["unknown_event_type"] == 1
    assert c["rejected_malformed_json"] == 2
    assert c["rejected_missing_field"] == 3
    assert c["rejected_bad_advertiser_id"] == 4
    assert c["rejected_bad_ts"] == 3
    assert c["rejected_nul_in_product_id"] == 1
    assert c["rejected_future_ts"] == 1

    q = quarantined(tmp_path)
    by_raw = {r["raw"]: r["reason"] for r in q}
    assert by_raw[lines["malformed"]] == "malformed_json"
    assert by_raw[lines["too big"]] == "bad_advertiser_id"
    assert by_raw[lines["year only"]] == "bad_ts"
    assert by_raw[lines["nul"]] == "nul_in_product_id"
    assert by_raw[event("e15", "2024-03-12T01:00:01Z")] == "future_ts"
    assert len(q) == 14
    assert {r["run_id"] for r in q} == {"r1"}
    sources = {r["source_file"].rsplit("/", 2)[-2] for r in q}
    assert sources == {"dt=2024-03-10", "dt=2024-03-11"}
    assert result.quarantine_path.endswith("_quarantine/run_id=r1/dt=2024-03-10")


def test_offsets_and_epoch_millis_land_on_their_utc_day_across_both_folders(spark, tmp_path):
    write_lines(
        tmp_path,
        "2024-03-10",
        "part-0.json.gz",
        [
            event("before midnight utc", "2024-03-10T01:30:00+02:00"),  # 2024-03-09T23:30Z
            event("z", "2024-03-10T00:30:00Z"),
            event("after midnight utc", "2024-03-10T20:00:00-05:00"),  # 2024-03-11T01:00Z
            event("epoch noon", 1710072000000),
            event("no offset", "2024-03-10 08:15:00"),  # no offset: UTC
        ],
    )
    write_lines(
        tmp_path,
        "2024-03-11",
        "part-0.json",
        [
            event("late plus two", "2024-03-11T01:00:00+02:00"),  # 2024-03-10T23:00Z
            event("last milli", "2024-03-10T23:59:59.999Z"),
            event("next day", "2024-03-11T00:00:00Z"),
            event("next day epoch", 1710115200000),
            event("late minus five", "2024-03-10T19:30:00-0500"),  # 2024-03-11T00:30Z
        ],
    )

    result = read(spark, tmp_path)

    expected = spark.createDataFrame(
        [
            ("epoch noon", "product_view", "2024-03-10T12:00:00Z", 1, "p1"),
            ("last milli", "product_view", "2024-03-10T23:59:59.999Z", 1, "p1"),
            ("late plus two", "product_view", "2024-03-10T23:00:00Z", 1, "p1"),
            ("no offset", "product_view", "2024-03-10T08:15:00Z", 1, "p1"),
            ("z", "product_view", "2024-03-10T00:30:00Z", 1, "p1"),
        ],
        EVENT_SCHEMA.replace("ts timestamp", "ts string"),
    ).withColumn("ts", F.col("ts").cast("timestamp"))
    assert_df_equality(result.events, expected, ignore_row_order=True, ignore_nullable=True)
    c = result.counts
    assert_counts_add_up(c)
    assert (c["lines_read"], c["in_day"], c["outside_day"], c["rejected"]) == (10, 5, 5, 0)
    assert result.corrupt_files == []


def test_product_ids_with_awkward_characters_arrive_byte_exact(spark, tmp_path):
    awkward = [
        "a,b,c",
        'say "hi"',
        "tab\there",
        "line\nbreak",
        "carriage\r\nreturn",
        "back\\slash",
        "Ünïcødé-产品-🛒",
        "  padded  ",
        "'single'",
    ]
    lines = [event(f"e{i}", "2024-03-10T10:00:00Z", product_id=p) for i, p in enumerate(awkward)]
    write_lines(tmp_path, "2024-03-10", "part-0.json.gz", lines[:5])
    write_lines(tmp_path, "2024-03-10", "part-1.json", lines[5:])

    result = read(spark, tmp_path)

    got = sorted(r["product_id"] for r in result.events.collect())
    assert got == sorted(awkward)
    assert [p.encode("utf-8") for p in got] == [p.encode("utf-8") for p in sorted(awkward)]
    assert result.counts["in_day"] == len(awkward)
    assert_counts_add_up(result.counts)


def test_duplicates_are_kept_and_blank_lines_are_not_records(spark, tmp_path):
    write_lines(
        tmp_path,
        "2024-03-10",
        "part-0.json",
        [event("dup", "2024-03-10T10:00:00Z"), "", "   ", event("dup", "2024-03-10T10:00:00Z")],
    )

    result = read(spark, tmp_path)

    assert ids(result) == ["dup", "dup"]
    assert result.counts["blank_lines"] == 2
    assert result.counts["lines_read"] == 2
    assert_counts_add_up(result.counts)


def test_a_clean_day_writes_no_quarantine_and_runs_few_spark_jobs(spark, tmp_path):
    write_lines(tmp_path, "2024-03-10", "part-0.json.gz", [event("e1", "2024-03-10T10:00:00Z")])
    stale = tmp_path / "_quarantine" / "run_id=r1" / "dt=2024-03-10"
    stale.mkdir(parents=True)
    (stale / "part-0.json").write_text('{"raw": "old"}\n')

    result = read(spark, tmp_path)

    assert not stale.exists()  # a rerun of the same run id leaves no stale rejects behind
    assert result.counts["rejected"] == 0
    assert result.bad_share == 0.0
    # one pass (under adaptive execution: the files into dedup buckets, the buckets' partial views
    # per key, the summed views cached); no quarantine write
    assert result.spark_jobs <= 4


def test_rejected_share_over_the_limit_fails_the_day_after_quarantining(spark, tmp_path):
    good = [event(f"e{i}", "2024-03-10T10:00:00Z") for i in range(9)]
    write_lines(tmp_path, "2024-03-10", "part-0.json", good + ["garbage"])

    with pytest.raises(SourceError, match=r"bad share 10\.00% exceeds max_bad_share 5\.00%"):
        read(spark, tmp_path, max_bad_share=0.05)

    assert [r["raw"] for r in quarantined(tmp_path)] == ["garbage"]


def test_a_day_whose_folder_is_missing_is_not_ready(spark, tmp_path):
    write_lines(tmp_path, "2024-03-11", "part-0.json", [event("e1", "2024-03-10T23:00:00Z")])

    with pytest.raises(DataNotReady, match=r"no data file in .*dt=2024-03-10"):
        read(spark, tmp_path)
