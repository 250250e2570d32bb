"""The export path against moto's server (DynamoDB and S3 in one process): the same `matched` as
BatchGetItem, manifests as AWS writes them, and every way an export cannot be had or trusted."""

from __future__ import annotations

import re
import uuid

import pytest
from chispa import assert_df_equality

from spark_app.dynamo.enrich import enrich_with_catalog
from spark_app.dynamo.export import obtain_export
from spark_app.dynamo.export_join import enrich_from_export
from spark_app.errors import LookupFailed, translate_task_errors
from tests.support.dynamo import enable_pitr, export_config, load_catalog, rewrite_as_aws
from tests.support.s3 import client, s3_config

INPUT = "advertiser_id long, product_id string, view_count long"
NASTY = [
    'say "hi"',
    "it's",
    "tab\there",
    "new\nline",
    "emoji 🚀🚀",
    "café ☕",
    "x" * 1024,  # the longest sort key DynamoDB stores: 1,024 bytes
    "ü" * 512,  # 1,024 bytes in UTF-8
    "a,b;c|d",
    "\\back\\slash",
]
ABSENT = ["say 'hi'", "x" * 1023, "ü" * 511, "🚀", "ü" * 513, ""]  # near misses; over-long; empty
CATALOG = [(1, f"p{i}") for i in range(0, 300, 3)] + [(2, p) for p in NASTY] + [(3, "only-in-catalog")]


@pytest.fixture()
def s3(moto_server):
    return client(moto_server.endpoint_url)


@pytest.fixture()
def bucket(s3):
    name = f"exports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture()
def catalog(dynamodb, catalog_table):
    """The catalog table with CATALOG's items and point-in-time recovery on."""
    load_catalog(dynamodb, catalog_table, CATALOG)
    enable_pitr(dynamodb, catalog_table)
    return catalog_table


@pytest.fixture()
def day(spark):
    """The day's keys: 300 of advertiser 1 (a third in the catalog), the nasty ids, near misses, nulls."""
    rows = [(1, f"p{i}", i % 7 + 1) for i in range(300)]
    rows += [(2, p, 2) for p in NASTY + ABSENT] + [(None, "p3", 1), (1, None, 1), (4, "p3", 1)]
    return spark.createDataFrame(rows, INPUT)


def both_ways(day, cfg, moto_server, **kwargs):
    by_requests = enrich_with_catalog(day, cfg)
    by_export, info = enrich_from_export(day, cfg, s3_config(moto_server.endpoint_url), day.count(), **kwargs)
    return by_requests, by_export, info


@pytest.mark.parametrize(
    ("keys_limit", "advertiser", "join"),
    [(10_000_000, None, "broadcast export"), (50, 2, "broadcast day keys"), (0, None, "shuffle")],
    ids=["export-side-broadcast", "day-side-broadcast", "both-shuffled"],
)
def test_the_export_gives_the_same_matched_column_as_batch_get(
    day, catalog, bucket, moto_server, keys_limit, advertiser, join
):
    cfg = export_config(
        moto_server.endpoint_url, catalog, f"s3://{bucket}/exports", broadcast_max_keys=keys_limit
    )
    if advertiser is not None:  # fewer day keys than catalog items
        day = day.where(f"advertiser_id = {advertiser}")

    by_requests, by_export, info = both_ways(day, cfg, moto_server)

    assert_df_equality(by_export, by_requests, ignore_row_order=True)
    assert by_export.where("matched").count() == (100 if advertiser is None else 0) + len(NASTY)
    assert info["export_join"] == join
    assert info["export_items"] == len(CATALOG) and not info["export_manifest"]
    assert "no manifest" in info["export_note"] and "listed under data/" in info["export_note"]


def obtain(moto_server, catalog, s3_prefix, **export):
    return obtain_export(
        export_config(moto_server.endpoint_url, catalog, s3_prefix, **export),
        s3_config(moto_server.endpoint_url),
    )


def test_a_recent_export_is_reused_and_a_stale_one_is_not(dynamodb, catalog, bucket, moto_server):
    first = obtain(moto_server, catalog, f"s3://{bucket}/exports")
    again = obtain(moto_server, catalog, f"s3://{bucket}/exports")
    stale = obtain(moto_server, catalog, f"s3://{bucket}/exports", max_age_hours=0)

    assert (first.reused, again.reused, again.arn) == (False, True, first.arn)
    assert stale.reused is False and stale.arn != first.arn
    table_arn = dynamodb.describe_table(TableName=catalog)["Table"]["TableArn"]
    assert len(dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]) == 2


def test_an_export_under_another_prefix_is_not_reused(catalog, bucket, moto_server):
    other = obtain(moto_server, catalog, f"s3://{bucket}/other")
    mine = obtain(moto_server, catalog, f"s3://{bucket}/exports")

    assert mine.arn != other.arn and mine.prefix.startswith(f"exports/{catalog}/")


@pytest.mark.parametrize("relative", [False, True], ids=["full-keys", "keys-relative-to-the-prefix"])
def test_manifests_written_as_aws_writes_them_are_followed(day, catalog, bucket, moto_server, s3, relative):
    cfg = export_config(moto_server.endpoint_url, catalog, f"s3://{bucket}/exports")
    handle = obtain_export(cfg, s3_config(moto_server.endpoint_url))
    data_keys = rewrite_as_aws(s3, bucket, handle.prefix, handle.arn, files=3, relative=relative)

    by_requests, by_export, info = both_ways(day, cfg, moto_server)

    assert_df_equality(by_export, by_requests, ignore_row_order=True)
    assert info["export_manifest"] and info["export_files"] == len(data_keys) == 3 + 1  # one empty
    assert info["export_items"] == len(CATALOG)
    assert info["export_note"].startswith(f"manifest s3://{bucket}/{handle.prefix}/AWSDynamoDB/")


@pytest.mark.parametrize(
    ("lie", "expected"),
    [
        (
            {"count_delta": 1},
            f"manifest-files.json lists {len(CATALOG) + 1:,} items but DescribeExport ItemCount",
        ),
        ({"shift": True}, "items but the manifest says"),
        ({"md5": True}, "the manifest says"),
    ],
    ids=["total-disagrees", "one-file-count-disagrees", "checksum-disagrees"],
)
def test_a_manifest_that_disagrees_with_the_files_stops_the_day(
    day, catalog, bucket, moto_server, s3, lie, expected
):
    cfg = export_config(moto_server.endpoint_url, catalog, f"s3://{bucket}/exports")
    handle = obtain_export(cfg, s3_config(moto_server.endpoint_url))
    rewrite_as_aws(s3, bucket, handle.prefix, handle.arn, files=2, **lie)

    with pytest.raises(LookupFailed) as failure, translate_task_errors():
        enriched, _ = enrich_from_export(day, cfg, s3_config(moto_server.endpoint_url), 400)
        enriched.count()

    assert failure.value.exit_code == 6
    assert f"DynamoDB table {catalog}: export" in str(failure.value) and expected in str(failure.value)


def test_a_data_file_that_lost_an_item_stops_the_day_without_manifests(day, catalog, bucket, moto_server, s3):
    import gzip

    cfg = export_config(moto_server.endpoint_url, catalog, f"s3://{bucket}/exports")
    handle = obtain_export(cfg, s3_config(moto_server.endpoint_url))
    (obj,) = s3.list_objects_v2(Bucket=bucket, Prefix=f"{handle.prefix}/AWSDynamoDB/")["Contents"]
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()).splitlines()
    s3.put_object(Bucket=bucket, Key=obj["Key"], Body=gzip.compress(b"\n".join(lines[1:]) + b"\n"))

    with pytest.raises(LookupFailed) as failure:
        enrich_from_export(day, cfg, s3_config(moto_server.endpoint_url), 400)

    assert (
        f"read {len(CATALOG) - 1:,} items from 1 data files but DescribeExport says {len(CATALOG):,}"
        in str(failure.value)
    )


def test_point_in_time_recovery_off_is_named(dynamodb, catalog_table, bucket, moto_server):
    cfg = export_config(moto_server.endpoint_url, catalog_table, f"s3://{bucket}/exports")

    with pytest.raises(LookupFailed) as failure:
        obtain_export(cfg, s3_config(moto_server.endpoint_url))

    assert str(failure.value).startswith(f"DynamoDB table {catalog_table}: ExportTableToPointInTime failed")
    assert "probable cause: point-in-time recovery is off" in str(failure.value)


def test_a_missing_bucket_fails_the_export_and_names_the_cause(catalog, moto_server):
    # moto fails the export itself (FailureCode S3NoSuchBucket), as DynamoDB does: a real FAILED export.
    cfg = export_config(moto_server.endpoint_url, catalog, "s3://no-such-bucket-here/exports")

    with pytest.raises(LookupFailed) as failure:
        obtain_export(cfg, s3_config(moto_server.endpoint_url))

    message = str(failure.value)
    assert (
        message.startswith(f"DynamoDB table {catalog}: export arn:") and "FAILED (S3NoSuchBucket" in message
    )
    assert "probable cause: the bucket of dynamodb.export.s3_prefix does not exist" in message


def test_a_failed_export_under_the_prefix_is_never_reused(catalog, moto_server, s3):
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    with pytest.raises(LookupFailed):  # the bucket does not exist yet: the export FAILS
        obtain(moto_server, catalog, f"s3://{bucket}/exports")
    s3.create_bucket(Bucket=bucket)

    handle = obtain(moto_server, catalog, f"s3://{bucket}/exports")

    assert handle.reused is False and handle.item_count == len(CATALOG)


def test_a_wait_past_the_bound_is_named(dynamodb, catalog, bucket, moto_server):
    # Stand-in: moto completes an export at once, so a botocore hook on this client reports it
    # IN_PROGRESS, as DynamoDB does for the minutes a real export takes. The bound is 0 minutes.
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")

    polls = []

    def still_running(parsed=None, **kwargs):
        polls.append(parsed["ExportDescription"]["ExportArn"])
        parsed["ExportDescription"]["ExportStatus"] = "IN_PROGRESS"

    ddb.meta.events.register("after-call.dynamodb.DescribeExport", still_running)
    cfg = export_config(moto_server.endpoint_url, catalog, f"s3://{bucket}/exports", wait_minutes=0)

    with pytest.raises(LookupFailed) as failure:
        obtain_export(cfg, s3_config(moto_server.endpoint_url), ddb=ddb)

    # A bound of 0 minutes gives up at the first poll; the minutes it reports are however long
    # that one DescribeExport took on this machine, so they are not asserted.
    assert len(polls) == 1
    message = str(failure.value)
    assert message.startswith(f"DynamoDB table {catalog}: export {polls[0]} still IN_PROGRESS after ")
    assert re.search(r"after \d+\.\d min \(dynamodb\.export\.wait_minutes 0\)", message)
