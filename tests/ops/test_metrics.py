"""Run metrics (spark_app.ops.metrics) and the `metrics:` / report delivery keys of the config."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError

from spark_app.config import config_from_mapping
from spark_app.errors import ConfigError
from spark_app.local.servers import free_port
from spark_app.ops.metrics import metric_data, put_run_metrics, read_back

BASE = {
    "events": {"path": "s3://ev/events"},
    "dynamodb": {"table": "catalog", "region": "us-east-1"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog"},
}
STATS = {  # as Progress.as_stats() gives them after a published day
    "stages": {"extract": {"seconds": 50.3, "rows": 12317}, "enrich": {"seconds": 4.1, "rows": 12317},
               "quality": {"seconds": 2.0, "rows": None, "engine": "deequ", "warnings": 1, "errors": 0,
                           "passed": 11}},
    "counts": {"lines_read": 404087, "rejected": 404, "advertisers_in_trouble": 2},
    "total_seconds": 61.2,
    "match_rate": 0.7912,
}


def _cfg(**top):
    return config_from_mapping({**BASE, **top})


def test_a_run_is_one_list_of_metrics_with_the_pipeline_as_only_dimension():
    data = metric_data("catalog_match_rate", STATS, 0, at=datetime(2026, 11, 20, 6, 41, tzinfo=timezone.utc))

    assert {d["MetricName"]: (d["Value"], d["Unit"]) for d in data} == {
        "ExtractSeconds": (50.3, "Seconds"), "EnrichSeconds": (4.1, "Seconds"),
        "QualitySeconds": (2.0, "Seconds"), "RunSeconds": (61.2, "Seconds"),
        "LinesRead": (404087.0, "Count"), "RejectedShare": (404 / 404087, "None"),
        "DetailRows": (12317.0, "Count"), "MatchRate": (0.7912, "None"),
        "AdvertisersInTrouble": (2.0, "Count"),
        "QualityConstraintsPassed": (11.0, "Count"), "QualityConstraintsFailed": (1.0, "Count"),
        "ExitCode": (0.0, "None")}
    assert {str(d["Dimensions"]) for d in data} == {"[{'Name': 'Pipeline', 'Value': 'catalog_match_rate'}]"}


def test_a_run_that_failed_early_puts_what_it_reached_and_its_exit_code():
    stats = {"stages": {"migrate": {"seconds": 0.5, "rows": None}}, "counts": {}, "total_seconds": 3.0}
    names = [d["MetricName"] for d in metric_data("catalog_match_rate", stats, 3)]
    assert names == ["MigrateSeconds", "RunSeconds", "ExitCode"]


def test_metrics_put_to_moto_are_read_back(moto_server):
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    cfg = _cfg(metrics={"namespace": namespace, "endpoint_url": moto_server.endpoint_url})

    pipeline = f"p_{uuid.uuid4().hex[:8]}"  # moto's GetMetricData tells runs apart by dimension only

    said = put_run_metrics(cfg, pipeline, STATS, 0)

    assert said == (f"12 metrics to CloudWatch namespace {namespace} at {moto_server.endpoint_url} "
                    f"(dimension Pipeline={pipeline})")
    cw = boto3.client("cloudwatch", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    now = datetime.now(timezone.utc)
    got = read_back(cw, namespace, pipeline, ["MatchRate", "ExitCode"], now - timedelta(hours=1),
                    now + timedelta(minutes=5))
    assert got == {"MatchRate": [0.7912], "ExitCode": [0.0]}


def test_a_refused_connection_is_a_warning_not_a_failure(caplog):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = _cfg(metrics={"namespace": "Test/refused", "endpoint_url": closed})
    with caplog.at_level(logging.WARNING, logger="spark_app.ops.metrics"):
        assert put_run_metrics(cfg, "catalog_match_rate", STATS, 0) is None
    (record,) = caplog.records
    assert record.getMessage().startswith("run metrics not put to CloudWatch (namespace Test/refused): "
                                          "EndpointConnectionError: Could not connect to the endpoint URL")


def test_an_error_answered_by_cloudwatch_is_a_warning_naming_it(moto_server, caplog):
    # moto accepts every PutMetricData; an error answer is injected before the request is sent
    # (a stand-in: moto cannot be made to refuse this call).
    cw = boto3.client("cloudwatch", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")

    def refuse(**_):
        error = {"Code": "AccessDenied", "Message": "not authorized to cloudwatch:PutMetricData"}
        raise ClientError({"Error": error}, "PutMetricData")

    cw.meta.events.register("before-call.cloudwatch.PutMetricData", refuse)
    cfg = _cfg(metrics={"namespace": "Test/denied", "endpoint_url": moto_server.endpoint_url})
    with caplog.at_level(logging.WARNING, logger="spark_app.ops.metrics"):
        assert put_run_metrics(cfg, "catalog_match_rate", STATS, 0, client=cw) is None
    assert caplog.records[0].getMessage() == (
        "run metrics not put to CloudWatch (namespace Test/denied): AccessDenied: not authorized to "
        "cloudwatch:PutMetricData; the run's result is unchanged")


def test_without_a_metrics_section_nothing_is_put():
    assert put_run_metrics(_cfg(), "catalog_match_rate", STATS, 0) is None
    assert put_run_metrics(_cfg(metrics={"enabled": False}), "catalog_match_rate", STATS, 0) is None


@pytest.mark.parametrize("top, key", [
    ({"metrics": {"namespace": "AWS/EMR"}}, "metrics.namespace"),
    ({"metrics": {"namespace": "has space"}}, "metrics.namespace"),
    ({"metrics": {"endpoint_url": "localhost:4566"}}, "metrics.endpoint_url"),
    ({"metrics": {"unknown": 1}}, "metrics.unknown"),
    ({"report": {"s3_prefix": "/tmp/reports"}}, "report.s3_prefix"),
    ({"report": {"link_hours": 169}}, "report.link_hours"),
    ({"report": {"topic_arn": "catalog-team"}}, "report.topic_arn"),
    ({"alerts": {"markers_uri": "s3://b/p", "endpoint_url": "moto"}}, "alerts.endpoint_url"),
])
def test_a_bad_metrics_or_delivery_value_is_refused_naming_its_key(top, key):
    with pytest.raises(ConfigError, match=rf"<memory>: {key}: "):
        _cfg(**top)
