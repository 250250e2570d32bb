"""The run's outputs for operations on the local stack: made ready in moto, then read back.

`prepare` (part of `up`) creates in moto what AWS would already have: the buckets of the markers
and of `report.s3_prefix`, the alert topic (`alerts.topic_name`, which `deploy.py alerts` creates
on AWS) and `report.topic_arn`'s topic, each with an SQS queue subscribed, so that what the job
publishes can be read back. `where_outputs_went` (after `run`) reads back from moto where the
run's metrics, marker, report and trouble summary went, one line each.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, List, Optional

from spark_app.alerts_config import markers_uri
from spark_app.local.s3_upload import ensure_bucket
from spark_app.ops import aws
from spark_app.s3_uri import split_s3_uri

if TYPE_CHECKING:
    from spark_app.local.stack import Stack

QUEUE_SUFFIX = "-local-inbox"  # the queue subscribed to a topic: <topic name>-local-inbox


def topics(stack: Stack) -> List[str]:
    """The topic names the job may publish to: the alert topic and the catalog team's."""
    cfg = stack.cfg
    names = [cfg.alerts.topic_name] if cfg.alerts else []
    arn = cfg.report.topic_arn
    return names + ([arn.rsplit(":", 1)[1]] if arn and arn.rsplit(":", 1)[1] not in names else [])


def prepare(stack: Stack, say=print) -> None:
    """Buckets, topics and their inbox queues in moto (created once; moto keeps them in memory)."""
    cfg = stack.cfg
    s3 = aws.s3(cfg)
    for uri in filter(None, [markers_uri(cfg), cfg.report.s3_prefix]):
        ensure_bucket(s3, split_s3_uri(uri)[0])
    if not topics(stack):
        return
    sns, sqs = aws.sns(cfg), aws.client(cfg, "sqs", cfg.alerts.endpoint_url if cfg.alerts else None)
    for name in topics(stack):
        topic = sns.create_topic(Name=name)["TopicArn"]
        queue = sqs.create_queue(QueueName=name + QUEUE_SUFFIX)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
        queue_arn = attributes["QueueArn"]
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        subscribed = {s["Endpoint"] for s in subscriptions}
        if queue_arn not in subscribed:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    say(f"SNS topics   {', '.join(topics(stack))} (each read through the SQS queue <topic>{QUEUE_SUFFIX})")


def where_outputs_went(stack: Stack, day: date) -> str:
    """One line each for the metrics, the marker, the report and the trouble summary, read from moto."""
    lines = ["", "== where the run's outputs went (moto)"]
    readers = (("metrics", _metrics), ("marker", _marker), ("report", _report), ("summary", _summary))
    for label, read in readers:
        try:
            text = read(stack, day)
        except Exception as exc:  # noqa: BLE001 - the job may have failed; say what could not be read
            text = f"(could not be read back: {aws.error_text(exc)})"
        if text:
            lines.append(f"{label:<13} {text}")
    return "\n".join(lines) if len(lines) > 2 else ""


def _metrics(stack: Stack, day: date) -> Optional[str]:
    m = stack.cfg.metrics
    if m is None or not m.enabled:
        return None
    from spark_app.ops.metrics import read_back

    cw = aws.cloudwatch(stack.cfg)
    pages = cw.get_paginator("list_metrics").paginate(Namespace=m.namespace)
    names = sorted({x["MetricName"] for page in pages for x in page["Metrics"]})
    now = datetime.now(timezone.utc)
    got = read_back(cw, m.namespace, "catalog_match_rate", ["ExitCode"], now - timedelta(hours=3),
                    now + timedelta(minutes=5), stat="SampleCount")
    runs = int(sum(got["ExitCode"]))
    where = f"CloudWatch {m.endpoint_url or 'AWS'} namespace {m.namespace}"
    if not names:
        return f"{where}: no metrics"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{where}: {len(names)} metrics ({shown}), {runs} run(s) put in the last 3 hours"


def _marker(stack: Stack, day: date) -> Optional[str]:
    from spark_app.published import marker_key, read_marker, split_uri

    uri = markers_uri(stack.cfg)
    if not uri:
        return None
    marker = read_marker(aws.s3(stack.cfg), uri, "catalog_match_rate", day)
    bucket, prefix = split_uri(uri)
    where = f"s3://{bucket}/{marker_key(prefix, 'catalog_match_rate', day)}"
    if marker is None:
        return f"{where}: not written (the day was not published)"
    return f"{where} (run {marker['run_id']}, match rate {marker['match_rate']})"


def _report(stack: Stack, day: date) -> Optional[str]:
    from spark_app.ops.delivery import day_prefix

    prefix = stack.cfg.report.s3_prefix
    if not prefix:
        return None
    bucket, key = split_s3_uri(day_prefix(prefix, "catalog_match_rate", day) + "/")
    listed = aws.s3(stack.cfg).list_objects_v2(Bucket=bucket, Prefix=key)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    if not keys:
        return f"s3://{bucket}/{key}: nothing delivered"
    csvs = sum(k.endswith(".csv") for k in keys)
    return f"s3://{bucket}/{key}report.html and {csvs} products-to-add CSV file(s)"


def _summary(stack: Stack, day: date) -> Optional[str]:
    cfg = stack.cfg
    if not cfg.report.s3_prefix or not topics(stack):
        return None
    sqs = aws.client(cfg, "sqs", cfg.alerts.endpoint_url if cfg.alerts else None)
    said = []
    for name in topics(stack):
        queue = sqs.get_queue_url(QueueName=name + QUEUE_SUFFIX)["QueueUrl"]
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        subjects = sorted(json.loads(m["Body"]).get("Subject", "") for m in messages)
        for m in messages:  # read: taken off the queue, so a later run shows only its own
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        if subjects:
            said.append(f"{len(subjects)} message(s) on SNS topic {name}: " + ", ".join(map(repr, subjects)))
    return "; ".join(said) if said else "no advertiser newly in trouble: nothing published"
