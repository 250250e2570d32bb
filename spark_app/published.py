"""The published marker: one small JSON object per pipeline and day on S3, written after a successful publish.

The job writes it once the day is in PostgreSQL; the deadline watch (the alert Lambda, see
spark_app.emr.alert_handler) reads it: a day without its marker by `alerts.deadline` is late.

    <markers_uri>/<pipeline>/dt=<YYYY-MM-DD>/published.json
    {"format": 1, "pipeline": "catalog_match_rate", "day": "2026-11-19", "run_id": "42",
     "published_at": "2026-11-20T06:41:09Z", "rows_in": 4000000, "rows_out": 181234,
     "rows_rejected": 12, "match_rate": 0.8123, "report_uri": null}

Standard library only (boto3 clients are passed in): shipped with the job (Python 3.9) and
inside the alert Lambda's zip.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from typing import Any, Dict, Optional, Tuple, Union

MARKER_NAME = "published.json"
FORMAT = 1
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")

Day = Union[str, date]


def _day(day: Day) -> str:
    text = day.isoformat() if isinstance(day, date) else str(day)
    if not _DAY.fullmatch(text):
        raise ValueError(f"day must be YYYY-MM-DD, got {text!r}")
    return text


def split_uri(markers_uri: str) -> Tuple[str, str]:
    """s3://bucket/some/prefix/ -> ("bucket", "some/prefix")."""
    if not markers_uri.startswith("s3://"):
        raise ValueError(f"markers location must be s3://bucket/prefix, got {markers_uri!r}")
    bucket, _, prefix = markers_uri[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


def marker_key(prefix: str, pipeline: str, day: Day) -> str:
    """The marker's key inside the bucket: <prefix>/<pipeline>/dt=<day>/published.json."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return f"{base}{pipeline}/dt={_day(day)}/{MARKER_NAME}"


def marker_body(pipeline: str, day: Day, run_id: Any, rows_in: Optional[int] = None,
                rows_out: Optional[int] = None, rows_rejected: Optional[int] = None,
                match_rate: Optional[float] = None, report_uri: Optional[str] = None,
                published_at: Optional[datetime] = None) -> bytes:
    """The marker's JSON: what was published, when, and where the report is (None: not delivered)."""
    stamp = (published_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    body = {
        "format": FORMAT, "pipeline": pipeline, "day": _day(day), "run_id": str(run_id),
        "published_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "rows_in": rows_in, "rows_out": rows_out,
        "rows_rejected": rows_rejected, "match_rate": match_rate, "report_uri": report_uri,
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def write_marker(s3: Any, markers_uri: str, pipeline: str, day: Day, body: bytes) -> str:
    """Put the marker (replacing the day's earlier one); returns its s3:// URI."""
    bucket, prefix = split_uri(markers_uri)
    key = marker_key(prefix, pipeline, day)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def read_marker(s3: Any, markers_uri: str, pipeline: str, day: Day) -> Optional[Dict[str, Any]]:
    """The day's marker as a dict, or None when the day was not published (no marker)."""
    bucket, prefix = split_uri(markers_uri)
    try:
        data = s3.get_object(Bucket=bucket, Key=marker_key(prefix, pipeline, day))["Body"].read()
    except Exception as exc:  # botocore's ClientError; botocore is not imported here
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        raise
    return json.loads(data)


def last_published_day(s3: Any, markers_uri: str, pipeline: str) -> Optional[str]:
    """The newest day holding a marker, or None when there is none."""
    bucket, prefix = split_uri(markers_uri)
    base = marker_key(prefix, pipeline, "2000-01-01").rsplit("dt=", 1)[0]
    days = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            m = re.match(r"dt=(\d{4}-\d{2}-\d{2})/" + re.escape(MARKER_NAME) + "$", obj["Key"][len(base):])
            days += [m.group(1)] if m else []
    return max(days) if days else None
