"""The event source on S3: moto's S3 server over HTTP, read by Spark's S3A and by boto3.

The same hand-made day is written to local files and uploaded to a bucket; both reads must
agree row for row, count for count, quarantine included. Every way S3 can fail (a corrupt
object, a day prefix that is not there, a bucket that is not there, refused credentials) ends
in the error or the counted exclusion that the local path gives.

Refused credentials need a server that checks them: a second moto server, told through its
`/moto-api/reset-auth` switch to verify every request's signature against the access keys of
its IAM users (`tests.support.s3.require_credentials`).
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import uuid
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from spark_app.config import EventsConfig, S3Config, config_from_mapping, load_config
from spark_app.errors import DataNotReady, SourceError
from spark_app.events.availability import check_day_available
from spark_app.events.parse import DayWindow
from spark_app.events.read import read_day_events
from spark_app.events.scan import ScanSpec, file_outputs
from spark_app.local.s3_upload import ensure_bucket, upload_tree
from spark_app.local.servers import LocalMoto, free_port
from spark_app.session import s3a_conf
from tests.support import s3 as s3_support
from tests.support.events import event_line
from tests.support.paths import ROOT

DAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 12, tzinfo=timezone.utc)


def event(event_id, ts="2024-03-10T10:00:00Z", adv=7, product="p-1", event_type="product_view"):
    return event_line(event_id, ts, adv, product, event_type)


DAY_LINES = [
    event("e1"),
    event("e2", ts="2024-03-10T23:59:59+00:00", product='a, "b"\tc'),
    event("e2", ts="2024-03-10T23:59:59+00:00", product='a, "b"\tc'),
    event("e3", ts=1710064800000, event_type="search"),
    event("e4", ts="2024-03-09T22:00:00Z"),
    '{"event_id": "bad1"',
    event("bad2", adv="abc"),
    event("bad3", ts="yesterday"),
]
LATE_LINES = [
    event("e5", ts="2024-03-10T23:30:00Z", product="é-produit"),
    event("e6", ts="2024-03-11T01:00:00Z"),
]


def write_day(root):
    """dt=D: plain JSON, gzipped JSON and a truncated gzip upload; dt=D+1: gzipped late arrivals."""
    folder = root / f"dt={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text("\n".join(DAY_LINES) + "\n", encoding="utf-8")
    (folder / "part-1.json.gz").write_bytes(gzip.compress(f"{event('e7')}\n{event('e8')}\n".encode()))
    whole = gzip.compress("".join(event(f"t{i}") + "\n" for i in range(300)).encode())
    (folder / "part-2.json.gz").write_bytes(whole[: len(whole) // 2])
    (folder / "_SUCCESS").write_text("")
    late = root / f"dt={date(2024, 3, 11)}"
    late.mkdir()
    (late / "part-0.json.gz").write_bytes(gzip.compress(("\n".join(LATE_LINES) + "\n").encode("utf-8")))


@pytest.fixture(scope="module")
def at_moto(spark, moto_server):
    """The S3 config of the test run, its S3A settings put into the shared session."""
    s3 = s3_support.s3_config(moto_server.endpoint_url)
    s3_support.use_s3a(spark, s3)
    return s3


@pytest.fixture(scope="module")
def same_day(tmp_path_factory, at_moto):
    """(local root, s3 root, bucket): one day on disk and the same files in a new bucket."""
    tmp = tmp_path_factory.mktemp("s3-day")
    write_day(tmp / "events")
    bucket = f"events-{uuid.uuid4().hex[:10]}"
    client = s3_support.client(at_moto.endpoint_url)
    ensure_bucket(client, bucket)
    upload_tree(client, tmp / "events", f"s3://{bucket}/events")
    return tmp, f"s3://{bucket}", bucket


def read(spark, path, quarantine, s3=None, **options):
    cfg = EventsConfig(path=path, quarantine_path=quarantine, **{"max_bad_share": 0.9, **options})
    return read_day_events(spark, cfg, DAY, "run-1", now=NOW, s3=s3)


def relative(path: str) -> str:
    """A source file as the day's layout names it, whatever the store: events/dt=.../part-0.json."""
    return "events/" + path.split("/events/", 1)[1]


def quarantined(spark, folder: str):
    rows = spark.read.json(folder).collect()
    return sorted((r["raw"], r["reason"], relative(r["source_file"]), r["run_id"]) for r in rows)


def test_the_day_read_from_s3_equals_the_same_day_read_from_local_files(spark, same_day, at_moto):
    tmp, s3_root, _ = same_day
    assert not any(k.startswith("AWS_ENDPOINT_URL") for k in os.environ)  # only the config says where S3 is

    local = read(spark, str(tmp / "events"), str(tmp / "quarantine"))
    remote = read(spark, f"{s3_root}/events", f"{s3_root}/quarantine", s3=at_moto)

    assert remote.counts == local.counts
    c = remote.counts
    assert (c["lines_read"], c["in_day"], c["outside_day"], c["rejected"]) == (12, 7, 2, 3)
    assert sorted(remote.events.collect()) == sorted(local.events.collect())
    assert [relative(p) for p in remote.corrupt_files] == [relative(p) for p in local.corrupt_files]
    assert [relative(p) for p in remote.corrupt_files] == [f"events/dt={DAY}/part-2.json.gz"]
    assert remote.bad_share == pytest.approx(local.bad_share)
    assert remote.quarantine_path == f"{s3_root}/quarantine/run_id=run-1/dt={DAY}"
    assert quarantined(spark, remote.quarantine_path) == quarantined(spark, local.quarantine_path)
    assert sorted(r[1] for r in quarantined(spark, remote.quarantine_path)) == [
        "bad_advertiser_id",
        "bad_ts",
        "malformed_json",
    ]
    local.release()
    remote.release()


def test_a_corrupt_object_over_the_bad_share_limit_fails_the_day_naming_it_as_locally(
    spark, same_day, at_moto
):
    tmp, s3_root, _ = same_day

    with pytest.raises(SourceError) as from_disk:
        read(spark, str(tmp / "events"), str(tmp / "q-strict"), max_bad_share=0.01)
    with pytest.raises(SourceError) as from_s3:
        read(spark, f"{s3_root}/events", f"{s3_root}/q-strict", s3=at_moto, max_bad_share=0.01)

    assert f"{s3_root}/events/dt={DAY}/part-2.json.gz" in str(from_s3.value)
    assert str(from_s3.value).replace(s3_root, "ROOT") == str(from_disk.value).replace(
        f"file:{tmp}", "ROOT"
    ).replace(str(tmp), "ROOT")


def compressed_day(root):
    """dt=D in every codec the job reads, several streams per file, and two uploads cut short."""
    def zst(data):
        return pa.Codec("zstd").compress(data, asbytes=True)

    folder = root / f"dt={DAY}"
    folder.mkdir(parents=True)

    def lines(prefix, n):
        return "".join(event(f"{prefix}{i}") + "\n" for i in range(n)).encode()

    files = {
        "part-0.json.gz": gzip.compress(lines("g", 30)) + gzip.compress(lines("h", 20)),  # two members
        "part-1.json.gz": bz2.compress(lines("b", 25)),  # named gzip, holds bzip2
        "part-2.json.bz2": bz2.compress(lines("c", 10)) + bz2.compress(lines("d", 15)),  # two streams
        "part-3.json.zst": zst(lines("z", 40)) + zst(lines("y", 5)),  # two frames
        "part-4.json.bz2": bz2.compress(lines("t", 3000)),
        "part-5.json.zst": zst(lines("u", 3000)),
    }
    for name, content in files.items():
        cut = name in ("part-4.json.bz2", "part-5.json.zst")
        (folder / name).write_bytes(content[: len(content) // 2] if cut else content)
    (root / f"dt={date(2024, 3, 11)}").mkdir()


def test_every_codec_is_read_from_s3_as_from_local_files_and_cut_uploads_are_named(
    spark, tmp_path, at_moto
):
    compressed_day(tmp_path / "events")
    bucket = f"codecs-{uuid.uuid4().hex[:10]}"
    client = s3_support.client(at_moto.endpoint_url)
    ensure_bucket(client, bucket)
    upload_tree(client, tmp_path / "events", f"s3://{bucket}/events")

    local = read(spark, str(tmp_path / "events"), str(tmp_path / "quarantine"), max_bad_share=0.99)
    remote = read(spark, f"s3://{bucket}/events", f"s3://{bucket}/quarantine", s3=at_moto, max_bad_share=0.99)

    assert remote.counts == local.counts
    assert (remote.counts["lines_read"], remote.counts["in_day"], remote.counts["rejected"]) == (145, 145, 0)
    assert sorted(remote.events.collect()) == sorted(local.events.collect())
    assert {r["event_id"][0] for r in remote.events.collect()} == set("ghbcdzy")
    assert [relative(p) for p in remote.corrupt_files] == [relative(p) for p in local.corrupt_files]
    assert [relative(p) for p in remote.corrupt_files] == [
        f"events/dt={DAY}/part-4.json.bz2",
        f"events/dt={DAY}/part-5.json.zst",
    ]
    assert remote.bad_share == pytest.approx(local.bad_share)
    local.release()
    remote.release()


def test_a_missing_day_prefix_is_not_ready(spark, same_day, at_moto):
    _, s3_root, _ = same_day
    cfg = EventsConfig(path=f"{s3_root}/events")

    with pytest.raises(DataNotReady, match=rf"{s3_root}/events/dt=2024-03-20 does not exist yet"):
        check_day_available(cfg, date(2024, 3, 20), s3=at_moto)
    with pytest.raises(DataNotReady, match=rf"no data file in {s3_root}/events/dt=2024-03-20"):
        read_day_events(spark, cfg, date(2024, 3, 20), "run-1", now=NOW, s3=at_moto)


def test_a_bucket_that_does_not_exist_is_a_source_error_naming_it(spark, at_moto):
    cfg = EventsConfig(path="s3://no-such-bucket-here/events")

    with pytest.raises(SourceError, match="bucket no-such-bucket-here does not exist; check events.path"):
        check_day_available(cfg, DAY, s3=at_moto)
    with pytest.raises(
        SourceError, match=r"s3://no-such-bucket-here/events/dt=2024-03-10: bucket no-such-bucket-here does"
    ):
        read_day_events(spark, cfg, DAY, "run-1", now=NOW, s3=at_moto)


def test_s3_settings_come_from_config_only_and_emr_sets_none():
    local = load_config(ROOT / "conf" / "local.yaml")
    emr = load_config(ROOT / "conf" / "emr.yaml")

    assert emr.s3 is None
    assert local.s3 == S3Config(endpoint_url="http://127.0.0.1:54330", path_style_access=True)
    assert local.events.path.startswith("s3://") and local.events.quarantine_path.startswith("s3://")
    assert s3a_conf(local.s3) == {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # the SDK's provider: reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never EC2 metadata
        "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth."
        "EnvironmentVariableCredentialsProvider",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:54330",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }


def test_an_s3_endpoint_that_is_not_a_url_is_a_config_error():
    from spark_app.errors import ConfigError

    base = {"dynamodb": {"table": "t", "region": "us-east-1"}, "postgres": {"url": "postgresql://u@h/d"}}
    with pytest.raises(ConfigError, match=r"x.yaml: s3.endpoint_url: expected http\(s\)://host\[:port\]"):
        config_from_mapping(
            {**base, "source": "presto", "presto": {"host": "p"}, "s3": {"endpoint_url": "127.0.0.1:9"}},
            "x.yaml",
        )


# --------------------------------------------------------------------------- refused credentials


@pytest.fixture(scope="module")
def locked():
    """A moto server that checks credentials: bucket `locked` with one day, and a reader's keys."""
    import boto3

    server = LocalMoto(free_port()).start()
    client = s3_support.client(server.endpoint_url)
    client.create_bucket(Bucket="locked")
    body = "\n".join(DAY_LINES[:2]).encode()
    client.put_object(Bucket="locked", Key=f"events/dt={DAY}/part-0.json.gz", Body=gzip.compress(body))
    iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1")
    iam.create_user(UserName="reader")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    s3_support.require_credentials(server.endpoint_url)
    yield server, key["AccessKeyId"], key["SecretAccessKey"]
    server.stop()


def test_right_credentials_are_accepted_and_a_wrong_secret_is_a_clear_error_without_it(locked):
    server, key_id, secret = locked
    cfg = EventsConfig(path="s3://locked/events")
    wrong = f"wrong-{uuid.uuid4().hex}"
    right_client = s3_support.client(
        server.endpoint_url, aws_access_key_id=key_id, aws_secret_access_key=secret
    )
    wrong_client = s3_support.client(
        server.endpoint_url, aws_access_key_id=key_id, aws_secret_access_key=wrong
    )

    assert check_day_available(cfg, DAY, s3_client=right_client).folder.data_files == 1
    with pytest.raises(SourceError) as err:
        check_day_available(cfg, DAY, s3_client=wrong_client)

    assert "S3 refused the credentials (SignatureDoesNotMatch)" in str(err.value)
    assert "s3://locked/events/dt=2024-03-10" in str(err.value)
    assert wrong not in str(err.value) and secret not in str(err.value)


def test_an_object_the_store_refuses_is_reported_like_a_corrupt_file(locked):
    server, _, _ = locked  # this process holds the dummy keys of conftest, unknown to the server
    path = f"s3://locked/events/dt={DAY}/part-0.json.gz"
    window = DayWindow.of(DAY, NOW, 60, ["product_view"])
    spec = ScanSpec("json", window, s3=s3_support.s3_config(server.endpoint_url))

    assert [(kind, json.loads(item)) for kind, item in file_outputs(path, spec)] == [
        (
            "report",
            {
                "path": path,
                "problem": "cannot open: ClientError: An error occurred (InvalidAccessKeyId) when calling "
                "the GetObject operation: The AWS Access Key Id you provided does not exist in our records.",
            },
        )
    ]


def test_the_read_refused_by_the_store_is_a_source_error_naming_the_folder_without_the_secret(
    spark, locked, monkeypatch
):
    server, key_id, _ = locked
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)

    with pytest.raises(SourceError) as err:
        read_day_events(spark, EventsConfig(path="s3://locked/events"), DAY, "run-1", now=NOW,
                        s3=s3_support.s3_config(server.endpoint_url))

    assert str(err.value).startswith("s3://locked/events/dt=2024-03-10: S3 refused the credentials")
    assert wrong not in str(err.value)
