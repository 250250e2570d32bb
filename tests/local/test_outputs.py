"""`make run`'s last lines: where the run's metrics, marker, report and summary went in moto.

`prepare` (part of `up`) makes the buckets, the topic and its inbox queue; then what a run would
send is sent here by the job's own functions (no Spark: the job's side has its own tests in
tests/ops/), and `where_outputs_went` reads it back from moto. Each test has its own moto: moto's
GetMetricData tells metrics apart by dimension only, and every run has Pipeline=catalog_match_rate.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import boto3
import pytest
import yaml

from spark_app.config import config_from_mapping, load_config
from spark_app.local.outputs import prepare, where_outputs_went
from spark_app.local.servers import LocalMoto, free_port
from spark_app.local.stack import Stack
from spark_app.ops import aws
from spark_app.ops.metrics import put_run_metrics
from spark_app.published import marker_body, write_marker
from tests.support.paths import ROOT

DAY = date(2026, 11, 19)
PREFIX = f"catalog_match_rate/dt={DAY}"
BUCKET = "catalog-match-rate-local"


@pytest.fixture()
def moto():
    server = LocalMoto(free_port()).start()
    yield server
    server.stop()


def local_stack(endpoint: str) -> Stack:
    """conf/local.yaml with every endpoint on this test's moto."""
    text = (ROOT / "conf" / "local.yaml").read_text().replace("http://127.0.0.1:54330", endpoint)
    return Stack(config_from_mapping(yaml.safe_load(text), "local.yaml"), Path("local.yaml"))


def test_conf_local_sends_the_marker_metrics_report_and_summary_to_moto_alone():
    cfg = load_config(ROOT / "conf" / "local.yaml")
    moto = f"http://127.0.0.1:{cfg.local_services.dynamodb_port}"
    assert (cfg.alerts.endpoint_url, cfg.metrics.endpoint_url, cfg.s3.endpoint_url) == (moto, moto, moto)
    assert cfg.alerts.markers_uri.startswith("s3://") and cfg.report.s3_prefix.startswith("s3://")
    stack = Stack(cfg, Path("conf/local.yaml"))
    assert {"metrics.endpoint_url", "alerts.endpoint_url"} <= set(stack.keys_using_port(stack.moto_port))


def test_before_a_run_nothing_went_anywhere(moto):
    stack = local_stack(moto.endpoint_url)
    prepare(stack, lambda _: None)
    assert where_outputs_went(stack, DAY).splitlines()[2:] == [
        f"metrics       CloudWatch {moto.endpoint_url} namespace CatalogMatchRate: no metrics",
        f"marker        s3://catalog-match-rate-local/published/{PREFIX}/published.json: not written "
        "(the day was not published)",
        f"report        s3://catalog-match-rate-local/reports/{PREFIX}/: nothing delivered",
        "summary       no advertiser newly in trouble: nothing published",
    ]


def test_after_a_run_each_output_is_one_line_read_back_from_moto(moto):
    stack = local_stack(moto.endpoint_url)
    said = []
    prepare(stack, said.append)
    prepare(stack, said.append)  # a second up changes nothing: one subscription
    cfg = stack.cfg
    sns = boto3.client("sns", endpoint_url=moto.endpoint_url, region_name="us-east-1")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1
    assert said[0] == "SNS topics   catalog-match-rate-alerts (each read through the SQS queue " \
                      "<topic>-local-inbox)"

    put_run_metrics(cfg, "catalog_match_rate", {"stages": {"extract": {"seconds": 1.5}}, "counts": {}}, 0)
    write_marker(aws.s3(cfg), cfg.alerts.markers_uri, "catalog_match_rate", DAY,
                 marker_body("catalog_match_rate", DAY, "r42", match_rate=0.7014))
    s3 = aws.s3(cfg)
    for name in ("report.html", f"products-to-add-7-{DAY}.csv"):
        s3.put_object(Bucket="catalog-match-rate-local", Key=f"reports/{PREFIX}/{name}", Body=b"x")
    subject = "[catalog_match_rate] 1 advertiser newly in trouble"
    sns.publish(TopicArn=aws.alert_topic_arn(cfg), Subject=subject, Message="...")

    lines = where_outputs_went(stack, DAY).splitlines()

    assert lines[1] == "== where the run's outputs went (moto)"
    assert lines[2:] == [
        f"metrics       CloudWatch {moto.endpoint_url} namespace CatalogMatchRate: 2 metrics "
        "(ExitCode, ExtractSeconds), 1 run(s) put in the last 3 hours",
        f"marker        s3://{BUCKET}/published/{PREFIX}/published.json (run r42, match rate 0.7014)",
        f"report        s3://{BUCKET}/reports/{PREFIX}/report.html and 1 products-to-add CSV file(s)",
        "summary       1 message(s) on SNS topic catalog-match-rate-alerts: "
        "'[catalog_match_rate] 1 advertiser newly in trouble'",
    ]


def test_the_local_moto_serves_every_service_the_job_and_the_alerts_use_on_one_port(moto):
    def client(service):
        return boto3.client(service, endpoint_url=moto.endpoint_url, region_name="us-east-1")

    assert client("events").list_rules()["Rules"] == []  # EventBridge, where deploy.py alerts puts rules
    assert client("cloudwatch").list_metrics()["Metrics"] == []
    assert client("sns").list_topics()["Topics"] == []
    assert client("sqs").list_queues().get("QueueUrls", []) == []
    assert client("s3").list_buckets()["Buckets"] == []
    assert client("sts").get_caller_identity()["Account"] == "123456789012"
