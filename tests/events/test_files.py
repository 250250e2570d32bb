"""Compressed files are read to their end or named unreadable and left out; Parquet rows are
validated like JSON lines."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_app.config import EventsConfig
from spark_app.errors import SourceError
from spark_app.events.compression import content_kind, decompress
from spark_app.events.files import Unreadable
from spark_app.events.read import read_day_events
from spark_app.events.scan import ScanSpec, file_outputs

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


def text(lines) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def gz(lines) -> bytes:
    return gzip.compress(text(lines))


COMPRESS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "zstd": lambda data: pa.Codec("zstd").compress(data, asbytes=True),  # a frame without checksum
}
# 40 lines as the `zstd` tool writes them (`zstd -19`: one frame with its content checksum)
ZSTD_WITH_CHECKSUM = base64.b64decode(
    "KLUv/QRotQUAskcZGIDNAwDCgyMZik9kDFYlRUhkSskF0wDzwhE+19h780f4XGPvzR7hc429d0f4XGPvDUyr7HoLZY66UGcW"
    "A0tugTt4Dpizr5LL1FVrH3o4RDWamSzKKrlUgapay9EqufMgKkIdulIuqCHgLTW2dgOgg4LkHBFABBAiIMKJ8P9/P2PO0zzP"
    "ed4pz+ec53OeP8vmnM95njh1SUEpyVKWZVlKfWu+kSJjoWCbLBlDs6T+tVqCVQN6z0hM"
)


def decompressed(content: bytes, head: int = 10) -> bytes:
    """The file's text as a file task gets it: the first bytes read to tell the codec, then the rest."""
    out = io.BytesIO()
    decompress(content_kind(content[:head]), content[:head], io.BytesIO(content[head:]), out)
    return out.getvalue()


def assert_counts_add_up(counts):
    assert counts["lines_read"] == counts["in_day"] + counts["outside_day"] + counts["rejected"]
    assert counts["rejected"] == sum(v for k, v in counts.items() if k.startswith("rejected_"))


def read(spark, root, **cfg):
    return read_day_events(spark, EventsConfig(path=str(root), **cfg), DAY, "r1", now=NOW)


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_each_codec_is_told_by_its_bytes_and_read_through_every_stream_of_the_file(codec):
    first, second = text(lines_of(50)), text(lines_of(3, prefix="x"))
    whole = COMPRESS[codec](first)

    assert content_kind(whole[:64]) == codec
    assert decompressed(whole) == first
    assert decompressed(whole, head=len(whole)) == first  # a small file: all of it in the first read
    # concatenated streams, as `cat a.gz b.gz`, pbzip2 or `zstd` of several inputs write them
    assert decompressed(whole + COMPRESS[codec](second)) == first + second


@pytest.mark.parametrize("codec", sorted(COMPRESS))
@pytest.mark.parametrize("cut", ["the magic bytes alone", "half", "all but the last byte"])
def test_a_compressed_file_cut_short_is_unreadable_never_read_in_part(codec, cut):
    whole = COMPRESS[codec](text(lines_of(2000)))
    lengths = {"the magic bytes alone": 4, "half": len(whole) // 2, "all but the last byte": len(whole) - 1}
    short = lengths[cut]

    with pytest.raises(Unreadable, match=f"^{codec}: "):
        decompressed(whole[:short], head=min(10, short))


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_garbage_or_another_codec_after_a_complete_stream_makes_the_file_unreadable(codec):
    whole = COMPRESS[codec](text(lines_of(50)))
    other = COMPRESS["bzip2" if codec == "gzip" else "gzip"](text(lines_of(3)))

    for tail in (b"garbage\n", other):
        with pytest.raises(Unreadable, match=f"^{codec}: "):
            decompressed(whole + tail)


def test_gzip_alone_accepts_zero_padding_after_its_last_member_as_gzip_does():
    assert decompressed(gz(lines_of(5)) + bytes(300)) == text(lines_of(5))
    with pytest.raises(Unreadable, match="^bzip2: "):
        decompressed(bz2.compress(text(lines_of(5))) + bytes(300))


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_a_flipped_byte_is_caught_by_the_codecs_own_checks(codec):
    whole = ZSTD_WITH_CHECKSUM if codec == "zstd" else COMPRESS[codec](text(lines_of(200)))
    assert decompressed(whole).count(b"\n") > 0
    broken = bytearray(whole)
    broken[len(broken) // 2] ^= 0x55

    with pytest.raises(Unreadable, match=f"^{codec}: "):
        decompressed(bytes(broken))


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


def test_a_file_task_streams_each_codec_from_s3_and_names_the_broken_object(moto_server):
    from spark_app.config import S3Config
    from spark_app.events.files import s3_client
    from spark_app.events.parse import DayWindow

    at_moto = S3Config(endpoint_url=moto_server.endpoint_url, path_style_access=True)
    s3 = s3_client(at_moto)
    s3.create_bucket(Bucket="codec-check")
    folder = "events/dt=2024-03-10"
    for codec, compress in COMPRESS.items():
        whole = compress(text(lines_of(300, prefix=codec)))
        two_streams = whole + compress(text(lines_of(2)))
        s3.put_object(Bucket="codec-check", Key=f"{folder}/good-{codec}", Body=two_streams)
        s3.put_object(Bucket="codec-check", Key=f"{folder}/cut-{codec}", Body=whole[: len(whole) // 2])
    spec = ScanSpec("json", DayWindow.of(DAY, NOW, 60, ["product_view"]), s3=at_moto)

    def report(name):
        outputs = file_outputs(f"s3://codec-check/{folder}/{name}", spec)
        (row,) = [json.loads(item) for kind, item in outputs if kind == "report"]
        return row

    for codec in COMPRESS:
        assert report(f"good-{codec}")["lines"] == 302
        assert report(f"cut-{codec}")["problem"].startswith(f"{codec}: ")
    assert "NoSuchKey" in report("missing")["problem"]
