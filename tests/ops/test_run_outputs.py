"""What a real run of `process_data.py` tells operations, read back from moto's server over HTTP.

A hand-made day (2026-11-19): advertiser 1 views sku-1 once (in the catalog) and sku-2 three
times (not in it): match rate 1/4, below `report.min_match_rate` (0.6), so newly in trouble;
advertiser 2 views sku-9 twice, in the catalog: 2/2. Overall 3 of 6 views matched: 0.5.
The next day's folder holds one event of 2026-11-20 (read, outside the day): 7 lines read.
Each run gets its own CloudWatch namespace, bucket and topic, so runs never read each other's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import psycopg2
import pytest
import yaml

from spark_app.local.servers import LocalMoto, free_port
from spark_app.ops.metrics import read_back
from spark_app.published import read_marker
from tests.support.paths import ROOT

DAY = "2026-11-19"
PIPELINE = "catalog_match_rate"
LINES = [  # event_id, advertiser, product, ts
    ("e1", 1, "sku-1", "2026-11-19T08:00:00Z"),
    ("e2", 1, "sku-2", "2026-11-19T09:00:00Z"),
    ("e3", 1, "sku-2", "2026-11-19T10:00:00Z"),
    ("e4", 1, "sku-2", "2026-11-19T11:00:00Z"),
    ("e5", 2, "sku-9", "2026-11-19T12:00:00Z"),
    ("e6", 2, "sku-9", "2026-11-19T13:00:00Z"),
]
CATALOG = [(1, "sku-1"), (2, "sku-9")]


def event(event_id, adv, product, ts):
    return json.dumps({"event_id": event_id, "event_type": "product_view", "ts": ts,
                       "advertiser_id": adv, "product_id": product})


@pytest.fixture(scope="module")
def world(tmp_path_factory, pg_url, moto_server):
    """The day on disk, its catalog in moto's DynamoDB, a bucket, and an alert topic read through SQS."""
    from spark_app.dynamo.catalog import create_catalog_table

    tmp = tmp_path_factory.mktemp("ops")
    late = [("e9", 2, "sku-9", "2026-11-20T01:00:00Z")]
    for folder, lines in ((f"dt={DAY}", LINES), ("dt=2026-11-20", late)):
        (tmp / "events" / folder).mkdir(parents=True)
        (tmp / "events" / folder / "part-00000.json").write_text("\n".join(event(*x) for x in lines) + "\n")
    url, suffix = moto_server.endpoint_url, uuid.uuid4().hex[:8]
    aws = {"endpoint_url": url, "region_name": "us-east-1"}
    dynamodb = boto3.client("dynamodb", **aws)
    table = f"ops_catalog_{suffix}"
    create_catalog_table(dynamodb, table)
    for adv, product in CATALOG:
        item = {"advertiser_id": {"N": str(adv)}, "product_id": {"S": product}}
        dynamodb.put_item(TableName=table, Item=item)
    bucket, topic_name = f"ops-{suffix}", f"alerts-{suffix}"
    boto3.client("s3", **aws).create_bucket(Bucket=bucket)
    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"inbox-{suffix}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    conf = {
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}},
        "events": {"path": str(tmp / "events"), "quarantine_path": str(tmp / "quarantine")},
        "dynamodb": {"table": table, "region": "us-east-1", "endpoint_url": url},
        "postgres": {"url": pg_url},
        "s3": {"endpoint_url": url, "path_style_access": True},
        "alerts": {"topic_name": topic_name, "markers_uri": f"s3://{bucket}/published", "endpoint_url": url},
        "metrics": {"namespace": f"Test/{suffix}", "endpoint_url": url},
        "report": {"s3_prefix": f"s3://{bucket}/reports", "link_hours": 2},
    }
    yield {"tmp": tmp, "conf": conf, "bucket": bucket, "queue": queue, "aws": aws, "topic": topic}
    dynamodb.delete_table(TableName=table)


def run(world, name, day=DAY, **changes):
    """process_data.py for `day` with the world's config changed by section; the finished process."""
    conf = {**world["conf"], **{k: {**world["conf"][k], **v} for k, v in changes.items()}}
    path = world["tmp"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf))
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    args = [sys.executable, str(ROOT / "process_data.py"), "--pipeline", PIPELINE, "--date", day,
            "--conf", str(path)]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600), conf


def metrics_of(world, namespace, names, stat="Maximum"):
    cw = boto3.client("cloudwatch", **world["aws"])
    now = datetime.now(timezone.utc)
    return read_back(cw, namespace, PIPELINE, names, now - timedelta(hours=1), now + timedelta(minutes=5),
                     stat)


@pytest.fixture(scope="module")
def published(world):
    done, conf = run(world, "published")
    assert done.returncode == 0, done.stderr[-4000:]
    return done, conf


def test_a_published_run_puts_its_metrics_in_one_call_read_back_with_get_metric_data(world, published):
    _, conf = published
    stages = ["Migrate", "Extract", "Enrich", "Aggregate", "Load", "Quality", "Publish"]
    names = [f"{s}Seconds" for s in stages] + [
        "RunSeconds", "LinesRead", "RejectedShare", "DetailRows", "MatchRate", "AdvertisersInTrouble",
        "QualityConstraintsPassed", "QualityConstraintsFailed", "ExitCode"]

    got = metrics_of(world, conf["metrics"]["namespace"], names)
    counts = metrics_of(world, conf["metrics"]["namespace"], names, stat="SampleCount")

    assert {n: len(v) for n, v in got.items()} == {n: 1 for n in names}  # every metric, once
    assert all(v == [1.0] for v in counts.values())  # one value each: one run, one PutMetricData
    assert {n: got[n][0] for n in names[len(stages) + 1:]} == {
        "LinesRead": 7.0, "RejectedShare": 0.0, "DetailRows": 3.0, "MatchRate": 0.5,
        "AdvertisersInTrouble": 1.0, "QualityConstraintsPassed": got["QualityConstraintsPassed"][0],
        "QualityConstraintsFailed": 0.0, "ExitCode": 0.0}
    assert got["QualityConstraintsPassed"][0] >= 5
    assert all(got[f"{s}Seconds"][0] >= 0 for s in stages)
    cw = boto3.client("cloudwatch", **world["aws"])
    dims = {tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))
            for m in cw.list_metrics(Namespace=conf["metrics"]["namespace"])["Metrics"]}
    assert dims == {(("Pipeline", PIPELINE),)}  # nothing per advertiser


def test_after_a_publish_the_marker_names_the_run_its_counts_and_the_delivered_report(
        world, published, pg_url):
    s3 = boto3.client("s3", **world["aws"])
    marker = read_marker(s3, f"s3://{world['bucket']}/published", PIPELINE, DAY)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id FROM pipeline_runs WHERE status = 'succeeded' AND day = %s", (DAY,))
        (run_id,) = cur.fetchone()
    assert {k: v for k, v in marker.items() if k != "published_at"} == {
        "format": 1, "pipeline": PIPELINE, "day": DAY, "run_id": run_id, "rows_in": 7, "rows_out": 3,
        "rows_rejected": 0, "match_rate": 0.5,
        "report_uri": f"s3://{world['bucket']}/reports/{PIPELINE}/dt={DAY}/report.html"}
    assert f"published marker written: s3://{world['bucket']}/published/{PIPELINE}/dt={DAY}/published.json" \
        in published[0].stderr


def test_the_report_and_its_csvs_are_delivered_and_the_presigned_link_serves_the_same_bytes(world, published):
    s3 = boto3.client("s3", **world["aws"])
    prefix = f"reports/{PIPELINE}/dt={DAY}/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=world["bucket"], Prefix=prefix)["Contents"])
    assert keys == [f"{prefix}products-to-add-1-{DAY}.csv", f"{prefix}report.html"]
    html = s3.get_object(Bucket=world["bucket"], Key=f"{prefix}report.html")["Body"].read()
    assert b"<html" in html.lower()
    csv = s3.get_object(Bucket=world["bucket"], Key=f"{prefix}products-to-add-1-{DAY}.csv")["Body"].read()
    assert csv.decode().splitlines()[1] == "1,sku-2,3,1,28"

    message = summary_messages(world)[0]
    link = message["Message"].split("Link:    ", 1)[1].split("\n", 1)[0]
    with urllib.request.urlopen(link, timeout=30) as response:  # over HTTP from moto, as a reader's browser
        assert response.read() == html
    assert "X-Amz-Expires=7200" in link  # report.link_hours: 2


def summary_messages(world):
    sqs = boto3.client("sqs", **world["aws"])
    if "summaries" not in world:
        got = sqs.receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=5)
        world["summaries"] = [json.loads(m["Body"]) for m in got.get("Messages", [])]
        for m in got.get("Messages", []):
            sqs.delete_message(QueueUrl=world["queue"], ReceiptHandle=m["ReceiptHandle"])
    return world["summaries"]


def test_an_advertiser_newly_in_trouble_is_told_on_the_alert_topic(world, published):
    (message,) = summary_messages(world)
    text = message["Message"]
    assert message["TopicArn"] == world["topic"]
    assert message["Subject"] == f"[{PIPELINE}] 1 advertiser newly in trouble on {DAY}"
    assert text.startswith(f"{PIPELINE} {DAY}: 1 advertiser(s) newly in trouble, losing 3 views "
                           "(1 in trouble in all, losing 3).")
    assert "  advertiser 1: match rate 25.0%, 3 views lost (below threshold, new: no history)" in text
    assert f"Report:  s3://{world['bucket']}/reports/{PIPELINE}/dt={DAY}/report.html" in text
    assert "(valid 2 h)" in text


DOCS_PREFIX = "s3://example-artifacts/catalog-match-rate/reports"
DOCS_LINK = ("https://example-artifacts.s3.amazonaws.com/catalog-match-rate/reports/catalog_match_rate/"
             "dt%3D2026-11-19/report.html?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...&X-Amz-Date=...&"
             "X-Amz-Expires=7200&X-Amz-SignedHeaders=host&X-Amz-Signature=...")


def test_docs_show_the_trouble_summary_as_sent(world, published):
    (message,) = summary_messages(world)
    text = message["Message"].replace(f"s3://{world['bucket']}/reports", DOCS_PREFIX)
    link = text.split("Link:    ", 1)[1].split("\n", 1)[0]
    block = f"Subject: {message['Subject']}\n\n{text.replace(link, DOCS_LINK)}"
    assert block in (ROOT / "docs" / "operations.md").read_text(), block


def test_report_out_s3_writes_the_same_report_there(world, published):
    conf_path = world["tmp"] / "published.yaml"
    out = f"s3://{world['bucket']}/by-hand/report.html"
    args = [sys.executable, str(ROOT / "process_data.py"), "report", "--pipeline", PIPELINE, "--date", DAY,
            "--conf", str(conf_path), "--out", out, "--csv", f"s3://{world['bucket']}/by-hand/csv"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"  report: {out}" in done.stdout
    s3 = boto3.client("s3", **world["aws"])
    listed = s3.list_objects_v2(Bucket=world["bucket"], Prefix="by-hand/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert keys == [f"by-hand/csv/products-to-add-1-{DAY}.csv", "by-hand/report.html"]


def test_a_failed_run_puts_its_exit_code_and_writes_no_marker(world, published):
    # Its own moto for CloudWatch: moto's GetMetricData ignores the namespace of a query that
    # names dimensions, so the published run's metrics of the same minute would be read too.
    cloudwatch = LocalMoto(free_port()).start()
    try:
        done, conf = run(world, "failed", day="2026-11-25", metrics={"endpoint_url": cloudwatch.endpoint_url})
        assert done.returncode == 3, done.stderr[-4000:]  # the day's folder does not exist: not ready
        names = ["MigrateSeconds", "ExitCode", "LinesRead", "MatchRate"]
        got = metrics_of({"aws": {**world["aws"], "endpoint_url": cloudwatch.endpoint_url}},
                         conf["metrics"]["namespace"], names)
    finally:
        cloudwatch.stop()
    assert got["ExitCode"] == [3.0] and len(got["MigrateSeconds"]) == 1
    assert (got["LinesRead"], got["MatchRate"]) == ([], [])  # never reached
    s3 = boto3.client("s3", **world["aws"])
    assert read_marker(s3, f"s3://{world['bucket']}/published", PIPELINE, "2026-11-25") is None


def test_a_metrics_endpoint_that_refuses_leaves_the_day_published_with_a_warning(world, published):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every connection is refused
    s3 = boto3.client("s3", **world["aws"])
    key = f"published/{PIPELINE}/dt={DAY}/published.json"
    before = json.loads(s3.get_object(Bucket=world["bucket"], Key=key)["Body"].read())

    done, _ = run(world, "refused", metrics={"endpoint_url": closed})

    assert done.returncode == 0, done.stderr[-4000:]
    assert "run metrics not put to CloudWatch (namespace " in done.stderr
    assert "the run's result is unchanged" in done.stderr
    after = json.loads(s3.get_object(Bucket=world["bucket"], Key=key)["Body"].read())
    assert after["run_id"] != before["run_id"]  # the day was published again, its marker rewritten
    assert len(summary_messages_after(world)) == 0  # still in trouble, not newly: nothing told


def summary_messages_after(world):
    sqs = boto3.client("sqs", **world["aws"])
    got = sqs.receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return got.get("Messages", [])
