"""Unreadable gzip files are named and left out; Parquet rows are validated like JSON lines."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_app.config import EventsConfig
from spark_app.errors import SourceError
from spark_app.events.files import gzip_problem
from spark_app.events.read import read_day_events

DAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 12, tzinfo=timezone.utc)


def lines_of(n, prefix="e", ts="2024-03-10T10:00:00Z"):
    return [
        json.dumps(
            {
                "event_id": f"{prefix}{i}",
                "event_type": "product_view",
                "ts": ts,
                "advertiser_id": 7,
                "product_id": "p",
            }
        )
        for i in range(n)
    ]


def day_dir(root: Path, day="2024-03-10") -> Path:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gz(lines) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def assert_counts_add_up(counts):
    assert counts["lines_read"] == counts["in_day"] + counts["outside_day"] + counts["rejected"]
    assert counts["rejected"] == sum(v for k, v in counts.items() if k.startswith("rejected_"))


def read(spark, root, **cfg):
    return read_day_events(spark, EventsConfig(path=str(root), **cfg), DAY, "r1", now=NOW)


def test_gzip_problem_names_truncation_and_garbage_and_accepts_multi_member_files():
    whole = gz(lines_of(50))
    assert gzip_problem(whole) is None
    assert gzip_problem(whole + gz(lines_of(3))) is None  # concatenated members, as `cat a.gz b.gz`
    assert "EOFError" in gzip_problem(whole[: len(whole) // 2])
    assert "BadGzipFile" in gzip_problem(b"this is not gzip at all")


@pytest.fixture()
def day_with_corrupt_files(tmp_path):
    folder = day_dir(tmp_path)
    (folder / "part-0.json.gz").write_bytes(gz(lines_of(4)))
    whole = gz(lines_of(2000, prefix="t"))
    (folder / "part-1.json.gz").write_bytes(whole[: len(whole) // 2])  # an interrupted upload
    (folder / "part-2 copy.json.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate" * 4)
    (day_dir(tmp_path, "2024-03-11") / "part-0.json").write_text("\n".join(lines_of(2, prefix="late")) + "\n")
    return tmp_path


def test_a_corrupt_gzip_file_is_reported_by_name_and_its_lines_left_out(spark, day_with_corrupt_files):
    result = read(spark, day_with_corrupt_files, max_bad_share=0.99)

    names = [p.rsplit("/", 1)[-1] for p in result.corrupt_files]
    assert names == ["part-1.json.gz", "part-2 copy.json.gz"]
    assert sorted(r["event_id"] for r in result.events.collect()) == [
        "e0",
        "e1",
        "e2",
        "e3",
        "late0",
        "late1",
    ]
    assert result.counts["lines_read"] == 6
    assert_counts_add_up(result.counts)
    sizes = {p.name: p.stat().st_size for p in day_with_corrupt_files.glob("dt=*/*")}
    lost = sizes["part-1.json.gz"] + sizes["part-2 copy.json.gz"]
    assert result.bad_share == pytest.approx(lost / sum(sizes.values()))


def test_corrupt_files_over_the_bad_share_limit_fail_the_day_naming_them(spark, day_with_corrupt_files):
    with pytest.raises(SourceError) as err:
        read(spark, day_with_corrupt_files, max_bad_share=0.05)

    assert "part-1.json.gz" in str(err.value) and "part-2 copy.json.gz" in str(err.value)
    assert "exceeds max_bad_share 5.00%" in str(err.value)


def test_parquet_rows_of_the_wrong_type_or_missing_fields_are_rejected(spark, tmp_path):
    table = pa.table(
        {
            "event_id": ["ok", "no product", "bad advertiser", "bad ts", "epoch", "outside", "tabs"],
            "event_type": ["product_view", "product_view", "purchase", "product_view", "search", "x", "x"],
            "ts": [
                "2024-03-10T10:00:00+01:00",
                "2024-03-10T10:00:00Z",
                "2024-03-10T10:00:00Z",
                "10/03/2024",
                "1710072000000",
                "2024-03-09T10:00:00Z",
                "2024-03-10T11:00:00Z",
            ],
            "advertiser_id": pa.array([1, 2, -3, 4, 5, 6, 7], pa.int64()),
            "product_id": ["p1", None, "p3", "p4", "p5", "p6", 'a\tb,"c"\nü'],
            "ignored": [1.5] * 7,
        }
    )
    pq.write_table(table, day_dir(tmp_path) / "part-0.parquet")
    (day_dir(tmp_path) / "_SUCCESS").write_text("")

    result = read(spark, tmp_path, format="parquet", max_bad_share=1.0)

    got = {r["event_id"]: (r["advertiser_id"], r["product_id"]) for r in result.events.collect()}
    assert got == {"ok": (1, "p1"), "epoch": (5, "p5"), "tabs": (7, 'a\tb,"c"\nü')}
    c = result.counts
    assert_counts_add_up(c)
    assert (c["lines_read"], c["in_day"], c["outside_day"], c["rejected"]) == (7, 3, 1, 3)
    assert (c["rejected_missing_field"], c["rejected_bad_advertiser_id"], c["rejected_bad_ts"]) == (1, 1, 1)
    assert c["unknown_event_type"] == 1
    folder = Path(result.quarantine_path)
    rows = [json.loads(line) for f in folder.glob("part-*") for line in f.read_text().splitlines()]
    raw = {json.loads(r["raw"])["event_id"]: r["reason"] for r in rows}
    assert raw == {"no product": "missing_field", "bad advertiser": "bad_advertiser_id", "bad ts": "bad_ts"}


def test_parquet_with_a_double_advertiser_id_is_rejected_not_truncated(spark, tmp_path):
    table = pa.table(
        {
            "event_id": ["a", "b"],
            "event_type": ["product_view"] * 2,
            "ts": pa.array([1710072000000, 1710072000000], pa.int64()),
            "advertiser_id": [1.5, 2.0],
            "product_id": ["p", "q"],
        }
    )
    pq.write_table(table, day_dir(tmp_path) / "part-0.parquet")

    result = read(spark, tmp_path, format="parquet", max_bad_share=1.0)

    assert result.counts["rejected_bad_advertiser_id"] == 2
    assert result.counts["in_day"] == 0
    assert_counts_add_up(result.counts)


def test_a_generated_day_yields_exactly_its_events_and_late_arrivals(spark, tmp_path):
    from spark_app.local.sample_data import SampleSpec, write_day

    truth = write_day(tmp_path, DAY, SampleSpec(events=3000), files=2)

    result = read(spark, tmp_path, min_files=2, require_success_marker=True)

    assert result.counts["in_day"] == truth.counts["events"] + truth.counts["duplicate_lines"]
    assert result.counts["rejected"] == 0
    views = result.events.where("event_type = 'product_view'").dropDuplicates(["event_id"])
    per_key = {
        (r["advertiser_id"], r["product_id"]): r["count"]
        for r in views.groupBy("advertiser_id", "product_id").count().collect()
    }
    assert per_key == truth.expected_views


def test_an_unreadable_parquet_file_is_a_source_error_naming_the_day(spark, tmp_path):
    (day_dir(tmp_path) / "part-0.parquet").write_bytes(b"PAR1 not really parquet")

    with pytest.raises(SourceError, match=r"events of 2024-03-10: reading 1 files failed"):
        read(spark, tmp_path, format="parquet")


def test_the_gzip_check_streams_objects_from_s3_and_names_the_broken_one(moto_server):
    from spark_app.config import S3Config
    from spark_app.events.files import check_gzip_file, s3_client

    at_moto = S3Config(endpoint_url=moto_server.endpoint_url, path_style_access=True)
    s3 = s3_client(at_moto)
    s3.create_bucket(Bucket="gz-check")
    whole = gz(lines_of(50))
    s3.put_object(Bucket="gz-check", Key="events/dt=2026-11-19/good.json.gz", Body=whole)
    s3.put_object(Bucket="gz-check", Key="events/dt=2026-11-19/cut.json.gz", Body=whole[: len(whole) // 2])

    good = check_gzip_file("s3://gz-check/events/dt=2026-11-19/good.json.gz", at_moto)
    cut = check_gzip_file("s3://gz-check/events/dt=2026-11-19/cut.json.gz", at_moto)
    gone = check_gzip_file("s3://gz-check/events/dt=2026-11-19/missing.json.gz", at_moto)

    assert good == ("s3://gz-check/events/dt=2026-11-19/good.json.gz", None)
    assert "EOFError" in cut[1]
    assert "NoSuchKey" in gone[1]
