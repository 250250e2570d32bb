"""Hostile input: each case an adversarial review found to lose, change or block events.

The numbers in the test names are the review's items. Day D is 2024-03-10; `now` is fixed at
2024-03-12T00:00Z so that "future" is stable.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from spark_app.config import EventsConfig
from spark_app.errors import PipelineError, SourceError
from spark_app.events.read import read_day_events
from tests.support.events import event_line

DAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 12, tzinfo=timezone.utc)
NOON = "2024-03-10T12:00:00Z"


def event(event_id, ts=NOON, advertiser_id=9, product_id="p", event_type="product_view") -> str:
    return event_line(event_id, ts, advertiser_id, product_id, event_type)


def put(root: Path, name: str, content: bytes, day: str = "2024-03-10") -> Path:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return folder / name


def text(lines) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def read(spark, root: Path, **cfg):
    cfg.setdefault("max_bad_share", 1.0)
    return read_day_events(spark, EventsConfig(path=str(root), **cfg), DAY, "r1", now=NOW)


def quarantined(result):
    folder = Path(result.quarantine_path)
    return [json.loads(line) for f in sorted(folder.glob("part-*")) for line in f.read_text().splitlines()]


def views(result):
    rows = result.events.groupBy("advertiser_id", "product_id").count().collect()
    return {(r["advertiser_id"], r["product_id"]): r["count"] for r in rows}


def assert_counts_add_up(counts):
    assert counts["lines_read"] == counts["in_day"] + counts["outside_day"] + counts["rejected"]
    assert counts["rejected"] == sum(v for k, v in counts.items() if k.startswith("rejected_"))


def test_3_two_objects_on_one_line_are_malformed_not_half_kept(spark, tmp_path):
    two = event("e88") + event("e88x")
    put(tmp_path, "part-0.json", text([event("e1"), two]))

    result = read(spark, tmp_path)

    assert sorted(r["event_id"] for r in result.events.collect()) == ["e1"]
    assert result.counts["rejected_malformed_json"] == 1
    assert [q["raw"] for q in quarantined(result)] == [two]
    assert_counts_add_up(result.counts)


def test_4_product_ids_that_are_not_unicode_text_are_rejected_not_rewritten(spark, tmp_path):
    lines = [
        json.dumps({**json.loads(event("s1")), "product_id": "a\ud800b"}),  # escaped lone surrogate
        json.dumps({**json.loads(event("s2")), "product_id": "a\udfffb"}),
        event("q1", product_id="a?b"),
    ]
    data = (
        text(lines)
        + event("u1", product_id="aXb").replace("aXb", "a\udcffb", 1).encode("utf-8", "surrogateescape")
        + b"\n"
    )  # the byte 0xff inside product_id: not UTF-8
    put(tmp_path, "part-0.json", data)

    result = read(spark, tmp_path)

    assert views(result) == {(9, "a?b"): 1}
    assert result.counts["rejected_bad_product_id"] == 3
    assert {q["reason"] for q in quarantined(result)} == {"bad_product_id"}
    assert_counts_add_up(result.counts)


def test_5_product_ids_over_1024_utf8_bytes_are_rejected_and_1024_bytes_pass(spark, tmp_path):
    exactly = "é" * 512  # 1,024 bytes in UTF-8
    put(
        tmp_path,
        "part-0.json",
        text(
            [
                event("ok", product_id=exactly),
                event("long", product_id="x" * 3000),
                event("1025", product_id=exactly + "x"),
            ]
        ),
    )

    result = read(spark, tmp_path)

    assert views(result) == {(9, exactly): 1}
    assert result.counts["rejected_bad_product_id"] == 2
    assert_counts_add_up(result.counts)


def test_6_compression_is_told_by_magic_bytes_not_by_the_name(spark, tmp_path):
    def lines(prefix, n=100):
        return text([event(f"{prefix}{i}") for i in range(n)])

    def zst(data):
        return pa.Codec("zstd").compress(data, asbytes=True)
    put(tmp_path, "part-5.json.gz", gzip.compress(lines("a")))
    put(tmp_path, "part-6.json.GZ", gzip.compress(lines("b")))
    put(tmp_path, "part-7.json", gzip.compress(lines("c")))
    put(tmp_path, "part-8.json.gz", bz2.compress(lines("d")))  # the name says gzip, the bytes bzip2
    put(tmp_path, "part-9.json.bz2", bz2.compress(lines("e", 60)) + bz2.compress(lines("f", 40)))
    put(tmp_path, "part-10.json.zst", zst(lines("g", 70)) + zst(lines("h", 30)))
    put(tmp_path, "part-11.json.gz", gzip.compress(lines("i", 50)) + gzip.compress(lines("j", 50)))
    cut_bz2, cut_zst = bz2.compress(lines("x", 3000)), zst(lines("y", 3000))
    broken = [
        put(tmp_path, "part-12.json", b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 4),  # zstd magic, then noise
        put(tmp_path, "part-13.json.bz2", cut_bz2[: len(cut_bz2) // 2]),  # an upload cut short
        put(tmp_path, "part-14.json.zst", cut_zst[: len(cut_zst) // 2]),  # likewise
        put(tmp_path, "part-15.json.xz", lzma.compress(lines("z"))),  # a codec the job does not read
    ]

    result = read(spark, tmp_path)

    assert result.counts["in_day"] == 700
    assert result.counts["rejected"] == 0
    assert {r["event_id"][0] for r in result.events.collect()} == set("abcdefghij")
    assert sorted(p.rsplit("/", 1)[-1] for p in result.corrupt_files) == sorted(p.name for p in broken)
    assert result.bad_share == pytest.approx(
        sum(p.stat().st_size for p in broken) / sum(p.stat().st_size for p in tmp_path.glob("dt=*/*"))
    )


def test_7_paths_are_literal_not_globs(spark, tmp_path):
    root = tmp_path / "events[1]"
    put(root, "part-00000.json.gz", gzip.compress(text([event(f"a{i}") for i in range(10)])))
    put(root, "part-00001.json.gz", gzip.compress(text([event(f"b{i}") for i in range(10)])))
    put(root, "part-0000*.json.gz", gzip.compress(text([event(f"c{i}") for i in range(10)])))

    result = read(spark, root)

    assert result.counts["in_day"] == 30
    assert len({r["event_id"] for r in result.events.collect()}) == 30


def test_8_lines_read_are_counted_from_the_bytes_so_a_lost_line_is_caught(monkeypatch, tmp_path):
    # Stand-in: no real input makes the classifier lose a line, so the test makes it drop one and
    # checks that the day's counts refuse to add up (before, lines_read was defined as the sum).
    from spark_app.events import vector
    from spark_app.events.parse import DayWindow
    from spark_app.events.read import day_counts
    from spark_app.events.scan import ScanSpec, scan_file

    path = put(tmp_path, "part-0.json", text([event("e1"), "not json", event("e2")]))
    spec = ScanSpec("json", DayWindow.of(DAY, NOW, 60, ("product_view",)))
    honest = [b for b in scan_file(f"file:{path}", spec)]
    real_add_slow = vector._add_slow
    monkeypatch.setattr(
        vector,
        "_add_slow",
        lambda result, data, bounds, rows, window: real_add_slow(result, data, bounds, rows[1:], window),
    )
    lossy = [b for b in scan_file(f"file:{path}", spec)]

    def observed(batches):  # the file's report, and the dedup bucket's: the events it received
        report = batches[-1].column("report")[0].as_py()
        received = json.dumps({"path": "", "received": sum(b.num_rows for b in batches[:-1])})
        return {"reports": f"{report}\n{received}"}

    counts, _ = day_counts(observed(honest))
    assert (counts["lines_read"], counts["in_day"], counts["rejected"]) == (3, 2, 1)
    with pytest.raises(PipelineError, match="do not add up: 3 lines read but 2 accounted for"):
        day_counts(observed(lossy))


def test_9_timestamps_without_offset_are_utc_whatever_the_session_time_zone(spark, tmp_path):
    put(tmp_path, "part-0.json", text([event("late evening", ts="2024-03-10 23:30:00")]))
    put(tmp_path, "part-0.json", text([event("next day", ts="2024-03-11T02:00:00")]), day="2024-03-11")
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        result = read(spark, tmp_path)
        got = {
            r["event_id"]: r["us"]
            for r in result.events.select("event_id", F.unix_micros("ts").alias("us")).collect()
        }
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)

    assert got == {
        "late evening": int(datetime(2024, 3, 10, 23, 30, tzinfo=timezone.utc).timestamp()) * 10**6
    }
    assert (result.counts["in_day"], result.counts["outside_day"]) == (1, 1)


def test_10_single_quotes_are_malformed_and_a_repeated_field_is_rejected(spark, tmp_path):
    repeated = event("d1")[:-1] + ', "advertiser_id": 77}'
    other_repeated = event("d2")[:-1] + ', "user_id": 1, "user_id": 2}'
    single = (
        "{'event_id': 's1', 'event_type': 'product_view', 'ts': '2024-03-10T12:00:00Z', "
        "'advertiser_id': 9, 'product_id': 'p'}"
    )
    put(tmp_path, "part-0.json", text([repeated, other_repeated, single]))

    result = read(spark, tmp_path)

    assert views(result) == {(9, "p"): 1}  # d2: a repeated key that is not one of the five fields
    assert result.counts["rejected_duplicate_field"] == 1
    assert result.counts["rejected_malformed_json"] == 1
    assert {q["raw"]: q["reason"] for q in quarantined(result)} == {
        repeated: "duplicate_field",
        single: "malformed_json",
    }


def test_14_an_advertiser_id_beyond_bigint_is_quarantined_under_ansi_mode(spark, tmp_path):
    put(tmp_path, "part-0.json", text([event("ok"), event("big", advertiser_id=9223372036854775808)]))
    previous = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        result = read(spark, tmp_path)
        kept = sorted(r["event_id"] for r in result.events.collect())
    finally:
        spark.conf.set("spark.sql.ansi.enabled", previous)

    assert kept == ["ok"]
    assert result.counts["rejected_bad_advertiser_id"] == 1
    assert [q["reason"] for q in quarantined(result)] == ["bad_advertiser_id"]


def parquet_bytes(table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def parquet_day(ids, advertiser_ids):
    return pa.table(
        {
            "event_id": ids,
            "event_type": ["product_view"] * len(ids),
            "ts": [NOON] * len(ids),
            "advertiser_id": advertiser_ids,
            "product_id": ["p"] * len(ids),
        }
    )


def test_15_parquet_files_are_checked_one_by_one_and_bad_ones_named_and_counted(spark, tmp_path):
    put(tmp_path, "part-0.parquet", parquet_bytes(parquet_day(["a", "b"], pa.array([9, 9], pa.int64()))))
    put(tmp_path, "part-1.parquet", parquet_bytes(parquet_day(["c", "d"], ["9", "9"])))  # another type
    whole = parquet_bytes(parquet_day(["e"], pa.array([9], pa.int64())))
    put(tmp_path, "part-2.parquet", whole[: len(whole) // 2])  # cut short
    put(tmp_path, "part-3.parquet", b"not parquet at all")

    result = read(spark, tmp_path, format="parquet")

    assert sorted(r["event_id"] for r in result.events.collect()) == ["a", "b", "c", "d"]
    assert [p.rsplit("/", 1)[-1] for p in result.corrupt_files] == ["part-2.parquet", "part-3.parquet"]
    assert result.bad_share > 0
    with pytest.raises(SourceError, match=r"part-2\.parquet.*part-3\.parquet.*exceeds max_bad_share"):
        read(spark, tmp_path, format="parquet", max_bad_share=0.05)


def test_16_bad_lines_of_the_next_day_folder_are_named_by_their_folder(spark, tmp_path):
    put(tmp_path, "part-0.json", text([event(f"e{i}") for i in range(20)]))
    put(
        tmp_path,
        "part-0.json",
        text([event("late", ts="2024-03-10T23:59:00Z"), "garbage", "junk"]),
        day="2024-03-11",
    )

    with pytest.raises(SourceError) as err:
        read(spark, tmp_path, max_bad_share=0.05)

    assert "2 of 3 in " in str(err.value) and "dt=2024-03-11" in str(err.value)
    assert "dt=2024-03-10:" not in str(err.value)


def test_16_a_line_of_spaces_and_tabs_is_blank_not_malformed(spark, tmp_path):
    put(tmp_path, "part-0.json", text([event("e1"), " \t ", "\t", event("e2")]))

    result = read(spark, tmp_path)

    assert result.counts["blank_lines"] == 2
    assert result.counts["rejected"] == 0
    assert result.counts["lines_read"] == 2
