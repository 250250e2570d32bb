"""The published marker (spark_app.published) and the `alerts:` section of the config."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone

import boto3
import pytest

from spark_app.config import config_from_mapping, load_config
from spark_app.errors import ConfigError
from spark_app.published import (
    last_published_day,
    marker_body,
    marker_key,
    read_marker,
    write_marker,
)
from tests.support.paths import ROOT

BASE = {
    "events": {"path": "s3://ev/events"},
    "dynamodb": {"table": "catalog", "region": "us-east-1"},
    "postgres": {"url": "postgresql://etl@db:5432/catalog"},
    "emr": {"bucket": "art", "prefix": "catalog-match-rate"},
}


def _cfg(alerts=None, **top):
    return config_from_mapping({**BASE, **top, **({"alerts": alerts} if alerts is not None else {})})


def test_the_marker_key_is_per_pipeline_and_day():
    assert marker_key("cmr/published/", "catalog_match_rate", "2026-11-19") == \
        "cmr/published/catalog_match_rate/dt=2026-11-19/published.json"
    assert marker_key("", "p", date(2026, 11, 19)) == "p/dt=2026-11-19/published.json"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        marker_key("x", "p", "2026-11-19/../../etc")


def test_the_marker_body_says_what_was_published_when_and_where_the_report_is():
    body = json.loads(marker_body("catalog_match_rate", "2026-11-19", 42, rows_in=4_000_000, rows_out=181_234,
                                  rows_rejected=12, match_rate=0.8123, report_uri="s3://r/2026-11-19/report.html",
                                  published_at=datetime(2026, 11, 20, 6, 41, 9, tzinfo=timezone.utc)))
    assert body == {"format": 1, "pipeline": "catalog_match_rate", "day": "2026-11-19", "run_id": "42",
                    "published_at": "2026-11-20T06:41:09Z", "rows_in": 4_000_000, "rows_out": 181_234,
                    "rows_rejected": 12, "match_rate": 0.8123, "report_uri": "s3://r/2026-11-19/report.html"}


def test_written_markers_are_read_back_and_the_newest_day_is_found(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    bucket = f"markers-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/cmr/published"
    assert read_marker(s3, uri, "catalog_match_rate", "2026-11-19") is None
    assert last_published_day(s3, uri, "catalog_match_rate") is None
    for day in ("2026-11-17", "2026-11-18"):
        body = marker_body("catalog_match_rate", day, run_id=day)
        written = write_marker(s3, uri, "catalog_match_rate", day, body)
    assert written == f"s3://{bucket}/cmr/published/catalog_match_rate/dt=2026-11-18/published.json"
    s3.put_object(Bucket=bucket, Key="cmr/published/other_pipeline/dt=2026-11-30/published.json", Body=b"{}")
    assert read_marker(s3, uri, "catalog_match_rate", "2026-11-18")["run_id"] == "2026-11-18"
    assert last_published_day(s3, uri, "catalog_match_rate") == "2026-11-18"


def test_the_example_config_has_an_alerts_block_and_markers_default_beside_the_release():
    from spark_app.alerts_config import markers_uri

    cfg = load_config(ROOT / "conf" / "emr.yaml")
    assert cfg.alerts.deadline == "07:00" and cfg.alerts.emails
    assert markers_uri(cfg) == "s3://example-artifacts/catalog-match-rate/published"
    assert markers_uri(_cfg({})) == "s3://art/catalog-match-rate/published"
    assert markers_uri(_cfg()) is None  # no alerts: section, no marker


@pytest.mark.parametrize("alerts, key", [
    ({"deadline": "7am"}, "alerts.deadline"),
    ({"deadline": "24:00"}, "alerts.deadline"),
    ({"log_wait_seconds": 900}, "alerts.log_wait_seconds"),
    ({"emails": ["oncall@example.com", "not-an-address"]}, r"alerts.emails\[1\]"),
    ({"markers_uri": "/local/path"}, "alerts.markers_uri"),
    ({"topic_name": "has spaces"}, "alerts.topic_name"),
    ({"function_name": "x" * 65}, "alerts.function_name"),
    ({"emails": "oncall@example.com"}, "alerts.emails"),
    ({"unknown": 1}, "alerts.unknown"),
])
def test_a_bad_alerts_value_is_refused_naming_its_key(alerts, key):
    with pytest.raises(ConfigError, match=rf"<memory>: {key}: "):
        _cfg(alerts)


def test_without_an_emr_section_the_markers_location_must_be_given():
    top = {k: v for k, v in BASE.items() if k != "emr"}
    with pytest.raises(ConfigError, match="alerts.markers_uri: required without an emr: section"):
        config_from_mapping({**top, "alerts": {}})
    cfg = config_from_mapping({**top, "alerts": {"markers_uri": "s3://b/published"}})
    assert cfg.alerts.markers_uri == "s3://b/published"
