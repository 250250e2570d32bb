"""Day availability: dt=D must be complete before a run starts; dt=D+1 missing is only a warning."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import boto3
import pytest

from spark_app.config import EventsConfig
from spark_app.errors import ConfigError, DataNotReady, SourceError
from spark_app.events.availability import check_day_available, list_folder

DAY = date(2024, 3, 10)


def put_local(root: Path, day: str, *names: str) -> None:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"" if name == "_SUCCESS" else b'{"x": 1}\n')


# --------------------------------------------------------------------------- local folders


def test_a_complete_local_day_with_its_next_day_passes_without_warnings(tmp_path):
    put_local(tmp_path, "2024-03-10", "part-0.json.gz", "part-1.json.gz", "_SUCCESS", ".part-0.json.gz.crc")
    put_local(tmp_path, "2024-03-11", "part-0.json.gz", "_SUCCESS")
    cfg = EventsConfig(path=str(tmp_path), min_files=2, require_success_marker=True)

    report = check_day_available(cfg, DAY)

    assert report.folder.data_files == 2  # the marker and the checksum file are not data
    assert report.folder.data_bytes == 2 * len(b'{"x": 1}\n')
    assert report.next_day_present
    assert report.warnings == []


def test_a_missing_local_day_is_not_ready(tmp_path):
    put_local(tmp_path, "2024-03-11", "part-0.json")

    with pytest.raises(DataNotReady, match=r"dt=2024-03-10 does not exist yet") as err:
        check_day_available(EventsConfig(path=str(tmp_path)), DAY)
    assert err.value.exit_code == 3


def test_a_local_day_without_its_success_marker_is_not_ready(tmp_path):
    put_local(tmp_path, "2024-03-10", "part-0.json")

    with pytest.raises(DataNotReady, match=r"no _SUCCESS marker.*1 data files so far"):
        check_day_available(EventsConfig(path=str(tmp_path), require_success_marker=True), DAY)


def test_a_local_day_with_too_few_files_is_not_ready(tmp_path):
    put_local(tmp_path, "2024-03-10", "part-0.json", "empty.json")
    (tmp_path / "dt=2024-03-10" / "empty.json").write_bytes(b"")

    with pytest.raises(DataNotReady, match=r"holds 1 data files, fewer than min_files=2"):
        check_day_available(EventsConfig(path=str(tmp_path), min_files=2), DAY)


def test_a_missing_next_day_is_only_a_warning(tmp_path, caplog):
    put_local(tmp_path, "2024-03-10", "part-0.json")

    report = check_day_available(EventsConfig(path=str(tmp_path)), DAY)

    assert not report.next_day_present
    assert len(report.warnings) == 1 and "dt=2024-03-11 is absent" in report.warnings[0]
    assert "will be missing" in caplog.text


# --------------------------------------------------------------------------- S3 (moto over HTTP)


@pytest.fixture()
def s3(moto_server):
    return boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")


@pytest.fixture()
def bucket(s3):
    name = f"events-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def put_s3(s3, bucket: str, day: str, *names: str, prefix: str = "logs") -> None:
    for name in names:
        body = b"" if name == "_SUCCESS" else b'{"x": 1}\n'
        s3.put_object(Bucket=bucket, Key=f"{prefix}/dt={day}/{name}", Body=body)


def test_a_complete_s3_day_is_listed_page_by_page(s3, bucket):
    put_s3(s3, bucket, "2024-03-10", *[f"part-{i}.json.gz" for i in range(5)], "_SUCCESS")
    put_s3(s3, bucket, "2024-03-11", "part-0.json.gz")
    put_s3(s3, bucket, "2024-03-10", "sub/part-9.json.gz")  # deeper keys are not the day's files
    put_s3(s3, bucket, "2024-03-12", "part-0.json.gz")  # a folder the day does not need
    requests = []
    s3.meta.events.register("after-call.s3.ListObjectsV2", lambda **kw: requests.append(kw["model"].name))

    listing = list_folder(f"s3://{bucket}/logs/dt=2024-03-10", s3_client=s3, page_size=2)

    assert (listing.exists, listing.data_files, listing.has_success_marker) == (True, 5, True)
    assert len(requests) == 4  # 7 keys under the prefix, 2 per page


def test_an_s3_day_is_checked_through_the_endpoint_of_the_s3_config(moto_server, s3, bucket):
    from spark_app.config import S3Config

    put_s3(s3, bucket, "2024-03-10", "part-0.json.gz", "part-1.json.gz", "_SUCCESS")
    cfg = EventsConfig(path=f"s3://{bucket}/logs", min_files=2, require_success_marker=True)

    report = check_day_available(cfg, DAY, s3=S3Config(endpoint_url=moto_server.endpoint_url))

    assert report.folder.data_files == 2
    assert not report.next_day_present
    assert report.warnings and f"s3://{bucket}/logs/dt=2024-03-11 is absent" in report.warnings[0]


def test_a_missing_s3_day_is_not_ready(s3, bucket):
    put_s3(s3, bucket, "2024-03-09", "part-0.json.gz")

    with pytest.raises(DataNotReady, match=rf"s3://{bucket}/logs/dt=2024-03-10 does not exist yet"):
        check_day_available(EventsConfig(path=f"s3://{bucket}/logs"), DAY, s3_client=s3)


def test_an_s3_day_still_being_written_is_not_ready(s3, bucket):
    put_s3(s3, bucket, "2024-03-10", "part-0.json.gz")
    cfg = EventsConfig(path=f"s3://{bucket}/logs", require_success_marker=True)

    with pytest.raises(DataNotReady, match=r"no _SUCCESS marker"):
        check_day_available(cfg, DAY, s3_client=s3)


def test_an_s3_next_day_without_its_marker_is_a_warning(s3, bucket):
    put_s3(s3, bucket, "2024-03-10", "part-0.json.gz", "_SUCCESS")
    put_s3(s3, bucket, "2024-03-11", "part-0.json.gz")
    cfg = EventsConfig(path=f"s3://{bucket}/logs", require_success_marker=True)

    report = check_day_available(cfg, DAY, s3_client=s3)

    assert report.next_day_present
    assert report.warnings == [
        f"events of 2024-03-10: s3://{bucket}/logs/dt=2024-03-11 is still being written (no _SUCCESS "
        "yet); late events may be missing: re-run 2024-03-10 once that folder is complete (the re-run "
        "replaces the day)"
    ]


def test_a_missing_bucket_is_a_source_error_not_a_retry(s3):
    with pytest.raises(SourceError, match=r"bucket no-such-bucket-x does not exist"):
        check_day_available(EventsConfig(path="s3://no-such-bucket-x/logs"), DAY, s3_client=s3)


def test_a_root_that_does_not_exist_is_a_config_error_not_a_retry(tmp_path):
    with pytest.raises(ConfigError, match=r"events.path: .*no-such-root does not exist") as err:
        check_day_available(EventsConfig(path=str(tmp_path / "no-such-root")), DAY)
    assert err.value.exit_code == 2


def test_an_s3_root_without_any_object_is_a_config_error(s3, bucket):
    with pytest.raises(ConfigError, match=rf"events.path: s3://{bucket}/typo does not exist"):
        check_day_available(EventsConfig(path=f"s3://{bucket}/typo"), DAY, s3_client=s3)


# --------------------------------------------------------------------------- one listing per run


@pytest.mark.parametrize("form", ["{}", "file:{}", "file://{}"])
def test_a_local_root_is_found_in_every_form_hadoop_and_users_write(tmp_path, form):
    put_local(tmp_path, "2024-03-10", "part-0.json")
    report = check_day_available(EventsConfig(path=form.format(tmp_path)), DAY)
    assert report.folder.data_files == 1
    assert [f.path for f in report.folder.files] == [f"file:{tmp_path}/dt=2024-03-10/part-0.json"]


def test_the_read_takes_the_files_this_check_listed_and_lists_nothing_again(spark, tmp_path):
    from datetime import datetime, timezone

    from spark_app.events.read import read_day_events

    put_local(tmp_path, "2024-03-10", "part-0.json")
    put_local(tmp_path, "2024-03-11", "part-0.json")
    cfg = EventsConfig(path=str(tmp_path), max_bad_share=1.0)
    report = check_day_available(cfg, DAY)
    put_local(tmp_path, "2024-03-10", "part-1.json")  # lands after the check: not this run's input

    now = datetime(2024, 3, 12, tzinfo=timezone.utc)
    result = read_day_events(spark, cfg, DAY, "r1", now=now, listed=report.folders)
    try:
        assert result.counts["lines_read"] == 2  # dt=D's part-0 and dt=D+1's part-0, one line each
    finally:
        result.release()
